"""Codebooks in the forms people review and exchange: YAML, Excel, Word, REFI-QDA .qdc, and team spreadsheets.

- **xlsx** and **docx** are for people to read and review.  The workbook has the codes in the columns a team
  spreadsheet uses (and a ``Rules`` sheet), so it can also be read back.
- **qdc** is the REFI-QDA codebook exchange format of NVivo, ATLAS.ti, MAXQDA and QualCoder.  A code there has a
  name, a description and child codes; the team-codebook fields, the ID, units and roles are written into the
  description as labelled paragraphs, and read back from them.  The rules are not part of the standard and are
  not kept (codebooks/README.md says so).  Every .qdc written is checked against the REFI-QDA schema.
- **From a spreadsheet** (.xlsx or .csv) a team keeps its codebook in: columns such as code, parent, name,
  definition, when to use, when not to use, examples.

Every file is written atomically (a temporary file beside it, then one rename).
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from dataclasses import replace
from pathlib import Path

import yaml

from pipeline.codebook import ID_RE, ROLES, UNITS, Code, Codebook, Rule, load_codebook
from pipeline.errors import InputError, Problem, problem
from pipeline.files import atomic_path

FORMATS = ("yaml", "xlsx", "docx", "qdc")
SUFFIX = {"yaml": ".yaml", "xlsx": ".xlsx", "docx": ".docx", "qdc": ".qdc"}
QDC_NS = "urn:QDA-XML:codebook:1.0"
SCHEMA = Path(__file__).parent / "data" / "refi_qda_codebook.xsd"
GUID_NAMESPACE = uuid.UUID("5b0e0b0c-3f4e-4d0a-9a55-1b1f0c0d1e01")  # stable GUIDs: the same ID, the same GUID


def convert(path: str | Path, to: str, out: Path | None = None) -> Path:
    """Convert the codebook at ``path`` to ``to`` (yaml, xlsx, docx or qdc); returns the file written.

    Reads .yaml/.yml (checked: every problem is raised at once), .qdc, and .xlsx/.csv spreadsheets.  Writes
    next to the input with the new extension unless ``out`` is given.
    """
    path = Path(path)
    to = to.lower().lstrip(".")
    if to == "yml":
        to = "yaml"
    if to not in FORMATS:
        raise problem(path, f"cannot convert to '{to}'", hint="choose one of " + ", ".join(FORMATS))
    book = read_codebook(path)
    target = Path(out) if out is not None else path.with_suffix(SUFFIX[to])
    if target.resolve() == path.resolve():
        raise problem(path, "the converted codebook would overwrite the input",
                      hint="give another output file with --out")
    {"yaml": write_yaml, "xlsx": write_xlsx, "docx": write_docx, "qdc": write_qdc}[to](book, target)
    return target


def read_codebook(path: Path) -> Codebook:
    """A codebook from any form this module reads, chosen by the file's extension."""
    path = Path(path)
    if not path.exists():
        raise problem(path, "no such file")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return load_codebook(path)
    if suffix == ".qdc":
        return read_qdc(path)
    if suffix in (".xlsx", ".xlsm", ".csv"):
        return read_spreadsheet(path)
    raise problem(path, f"cannot read a codebook from a '{suffix}' file",
                  hint="use a .yaml, .qdc, .xlsx or .csv codebook")


# --- YAML ---------------------------------------------------------------------------------------------------------


def rule_to_dict(rule: Rule, code_id: str, n: int) -> dict:
    """A rule as it is written in YAML: only what differs from the defaults."""
    out: dict = {}
    if rule.id != f"{code_id}#{n}":
        out["id"] = rule.id
    if rule.phrases:
        out["phrases"] = list(rule.phrases)
    if rule.regex:
        out["regex"] = rule.regex
    if rule.pattern:
        out["pattern"] = _Flow(rule.pattern)
    if rule.structure:
        out["structure"] = rule.structure
        out.update(rule.params)
    if rule.annotation:
        out["annotation"] = rule.annotation
    if rule.negated != "exclude":
        out["negated"] = rule.negated
    if rule.match != "lemma":
        out["match"] = rule.match
    return out


def code_to_dict(code: Code, book: Codebook) -> dict:
    """A code as written in YAML; units and roles only where they differ from what the parent passes down."""
    parent = book.get(code.parent) if code.parent else None
    out: dict = {"id": code.id, "name": code.name}
    implied_parent = code.id.rsplit(".", 1)[0] if "." in code.id else None
    if code.parent and code.parent != implied_parent:
        out["parent"] = code.parent
    if code.replaces:
        out["replaces"] = list(code.replaces)
    for key in ("brief", "definition", "when_to_use", "when_not_to_use"):
        if getattr(code, key):
            out[key] = getattr(code, key)
    if code.examples:
        out["examples"] = list(code.examples)
    inherited_units = parent.units if parent else UNITS
    inherited_roles = parent.roles if parent else ()
    if tuple(code.units) != tuple(inherited_units):
        out["units"] = list(code.units)
    if tuple(code.roles) != tuple(inherited_roles):
        out["roles"] = list(code.roles)
    if code.rules:
        out["rules"] = [rule_to_dict(r, code.id, i + 1) for i, r in enumerate(code.rules)]
    return out


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else ">" if len(value) > 100 else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


class _Flow(list):
    """A list written on one line (wrapped if long): phrases, units, token patterns."""


def _list(dumper: yaml.SafeDumper, value: list):
    flow = isinstance(value, _Flow) or all(isinstance(v, (str, int, float)) for v in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(list, _list)
_Dumper.add_representer(_Flow, _list)


def yaml_text(book: Codebook) -> str:
    data: dict = {"title": book.title, "version": book.version}
    if book.instrument:
        data["instrument"] = book.instrument
    if book.description:
        data["description"] = book.description
    if book.changelog:
        data["changelog"] = [{k: v for k, v in entry.items() if v} for entry in book.changelog]
    if book.retired:
        data["retired"] = list(book.retired)
    data["codes"] = [code_to_dict(c, book) for c in book.codes]
    header = f"# {book.title or 'Codebook'}: the format is described in codebooks/README.md\n"
    return header + yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


def write_yaml(book: Codebook, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(yaml_text(book), encoding="utf-8")


# --- the structured description (qdc, spreadsheets) ---------------------------------------------------------------

FIELD_LABELS = [
    ("id", "ID"), ("brief", "Brief definition"), ("definition", "Full definition"), ("when_to_use", "When to use"),
    ("when_not_to_use", "When not to use"), ("examples", "Examples"), ("units", "Units"), ("roles", "Roles"),
    ("replaces", "Replaces"),
]
_LABEL_RE = re.compile(r"^(" + "|".join(re.escape(label) for _, label in FIELD_LABELS) + r"):[ \t]*", re.MULTILINE)


def description_of(code: Code) -> str:
    """The code's fields as labelled paragraphs, readable in any QDA program and parsed back on import."""
    parts = [f"ID: {code.id}"]
    for key, label in FIELD_LABELS[1:5]:
        if getattr(code, key):
            parts.append(f"{label}: {getattr(code, key)}")
    if code.examples:
        parts.append("Examples:\n" + "\n".join(f"- {e}" for e in code.examples))
    parts.append("Units: " + ", ".join(code.units))
    parts.append("Roles: " + (", ".join(code.roles) if code.roles else "any"))
    if code.replaces:
        parts.append("Replaces: " + ", ".join(code.replaces))
    return "\n\n".join(parts)


def fields_from_description(text: str) -> dict:
    """The fields of :func:`description_of`; a description without labels is the full definition."""
    text = (text or "").strip()
    matches = list(_LABEL_RE.finditer(text))
    if not matches:
        return {"definition": text} if text else {}
    by_label = {label: key for key, label in FIELD_LABELS}
    out: dict = {}
    lead = text[: matches[0].start()].strip()
    if lead:
        out["definition"] = lead
    for m, nxt in zip(matches, matches[1:] + [None], strict=False):
        value = text[m.end(): nxt.start() if nxt else len(text)].strip()
        key = by_label[m.group(1)]
        if key == "examples":
            out[key] = [line[2:].strip() if line.startswith("- ") else line.strip()
                        for line in value.splitlines() if line.strip()]
        elif key in ("units", "roles"):
            out[key] = tuple(v for v in re.split(r"[,;\s]+", value) if v and v != "any")
        elif key == "replaces":
            out[key] = [v for v in re.split(r"[,;\s]+", value) if v]
        else:
            out[key] = value
    return out


# --- REFI-QDA .qdc ------------------------------------------------------------------------------------------------


def guid_of(code_id: str) -> str:
    return str(uuid.uuid5(GUID_NAMESPACE, code_id)).upper()


def qdc_bytes(book: Codebook) -> bytes:
    from lxml import etree

    root = etree.Element(f"{{{QDC_NS}}}CodeBook", nsmap={None: QDC_NS})
    origin = "ipr-pipeline"
    if book.title:
        origin += f" | {book.title}" + (f" | version {book.version}" if book.version else "")
    root.set("origin", origin)
    code_tree(etree.SubElement(root, f"{{{QDC_NS}}}Codes"), book, QDC_NS)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)


def code_tree(codes_el, book: Codebook, ns: str) -> None:
    """The codebook's codes as REFI-QDA ``Code`` elements under ``codes_el`` (namespace ``ns``: a codebook's or a
    project's), nested as the codebook nests them."""
    from lxml import etree

    def add(parent_el, code: Code) -> None:
        el = etree.SubElement(parent_el, f"{{{ns}}}Code", guid=guid_of(code.id), name=code.name or code.id,
                              isCodable="true")
        etree.SubElement(el, f"{{{ns}}}Description").text = description_of(code)
        for child in book.children(code.id):
            add(el, child)

    ids = set(book.ids())
    for code in book.codes:
        if code.parent is None or code.parent not in ids:
            add(codes_el, code)


def check_qdc(data: bytes, name: str = "codebook.qdc") -> None:
    """Raise InputError when ``data`` does not validate against the REFI-QDA codebook schema."""
    import xmlschema

    schema = xmlschema.XMLSchema(str(SCHEMA))
    errors = list(schema.iter_errors(io.BytesIO(data)))
    if errors:
        raise InputError([Problem(name, f"not a valid REFI-QDA codebook: {e.reason or e.message}",
                                  f"line {e.sourceline}" if getattr(e, "sourceline", None) else "") for e in errors])


def write_qdc(book: Codebook, path: Path) -> None:
    data = qdc_bytes(book)
    check_qdc(data, str(path))  # never write a file that other programs would reject
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return slug or "code"


def read_qdc(path: Path) -> Codebook:
    """A codebook from a REFI-QDA .qdc file: ours (fields in the descriptions) or any other program's."""
    from lxml import etree

    try:
        tree = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as e:
        raise problem(path, f"not valid XML: {e.msg}", f"line {e.lineno}") from None
    root = tree.getroot()
    if etree.QName(root).localname != "CodeBook":
        raise problem(path, f"not a REFI-QDA codebook: the root element is <{etree.QName(root).localname}>",
                      "line 1", "a .qdc file starts with <CodeBook>")
    book = Codebook(path=path)
    origin = root.get("origin", "")
    if origin.startswith("ipr-pipeline | "):
        parts = origin.split(" | ")
        book.title = parts[1]
        if len(parts) > 2 and parts[2].startswith("version "):
            book.version = parts[2][len("version "):]
    else:
        book.title = f"Codebook imported from {path.name}" + (f" ({origin})" if origin else "")
    problems: list[Problem] = []
    seen: set[str] = set()

    def walk(el, parent: Code | None) -> None:
        for child in el:
            if not isinstance(child.tag, str) or etree.QName(child).localname != "Code":
                continue
            name = child.get("name", "").strip()
            desc_el = next((d for d in child if isinstance(d.tag, str) and etree.QName(d).localname == "Description"),
                           None)
            fields = fields_from_description(desc_el.text if desc_el is not None else "")
            cid = fields.pop("id", "") or (f"{parent.id}." if parent else "") + _slug(name)
            if not ID_RE.match(cid):
                cid = (f"{parent.id}." if parent else "") + _slug(cid)
            base, n = cid, 2
            while cid in seen:  # two codes of the same name under one parent in another program
                cid, n = f"{base}_{n}", n + 1
            seen.add(cid)
            code = Code(id=cid, name=name or cid, parent=parent.id if parent else None, line=child.sourceline or 0)
            units = fields.pop("units", None)
            roles = fields.pop("roles", None)
            for key, value in fields.items():
                setattr(code, key, value)
            code.units = tuple(u for u in units if u in UNITS) if units else (parent.units if parent else UNITS)
            inherited_roles = parent.roles if parent else ()
            code.roles = tuple(r for r in roles if r in ROLES) if roles is not None else inherited_roles
            book.codes.append(code)
            walk(child, code)

    codes_el = next((c for c in root if isinstance(c.tag, str) and etree.QName(c).localname == "Codes"), None)
    if codes_el is None:
        problems.append(Problem(str(path), "the codebook has no <Codes>", "line 1"))
    else:
        walk(codes_el, None)
    if problems:
        raise InputError(problems)
    return book


# --- spreadsheets -------------------------------------------------------------------------------------------------

COLUMN_NAMES = {
    "id": ["id", "code id", "code_id", "identifier", "key"],
    "code": ["code", "code label"],
    "name": ["name", "label", "code name", "title", "short name"],
    "parent": ["parent", "parent code", "parent id", "parent_id", "category", "group"],
    "brief": ["brief", "brief definition", "short definition", "summary"],
    "definition": ["definition", "full definition", "description", "meaning"],
    "when_to_use": ["when to use", "when_to_use", "inclusion", "inclusion criteria", "include", "use when"],
    "when_not_to_use": ["when not to use", "when_not_to_use", "exclusion", "exclusion criteria", "exclude",
                        "do not use when", "don't use when"],
    "examples": ["examples", "example", "example quotes", "quotes", "exemplars"],
    "units": ["units", "unit"],
    "roles": ["roles", "role", "speaker", "speakers"],
    "phrases": ["phrases", "keywords", "key words", "search terms", "key phrases"],
    "replaces": ["replaces", "formerly", "former ids", "old ids", "previous ids"],
}
_HEADER = {re.sub(r"[^a-z0-9]+", " ", name).strip(): key for key, names in COLUMN_NAMES.items() for name in names}


def _cell_name(col: int, row: int) -> str:
    from openpyxl.utils import get_column_letter

    return f"cell {get_column_letter(col + 1)}{row}"


def _split_list(value: str) -> list[str]:
    """Examples or phrases in one cell: one a line, or separated by ';' or '|'."""
    parts = re.split(r"\n|;|\|", value) if ("\n" in value or ";" in value or "|" in value) else [value]
    return [p.strip().strip("\"'“”").strip() for p in parts if p.strip().strip("\"'“”").strip()]


def _sheet_rows(path: Path) -> tuple[list[list[str]], dict]:
    """The rows of the codebook sheet as text, and the other sheets our own workbook carries."""
    extra: dict = {}
    if path.suffix.lower() == ".csv":
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t") if text.strip() else csv.excel
        return [[c.strip() for c in row] for row in csv.reader(io.StringIO(text), dialect)], extra
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # zipfile.BadZipFile, KeyError, InvalidFileException: not a readable workbook
        raise problem(path, f"cannot read the workbook: {e}", hint="save it again as .xlsx from Excel") from None
    names = {n.lower(): n for n in wb.sheetnames}
    main = wb[names.get("codes") or names.get("codebook") or wb.sheetnames[0]]

    def text_rows(ws) -> list[list[str]]:
        return [["" if v is None else str(v).strip() for v in row] for row in ws.iter_rows(values_only=True)]

    if "rules" in names:
        extra["rules"] = (names["rules"], text_rows(wb[names["rules"]]))
    if "about" in names:
        extra["about"] = text_rows(wb[names["about"]])
    rows = text_rows(main)
    wb.close()
    return rows, extra


def read_spreadsheet(path: Path) -> Codebook:
    """A codebook from a spreadsheet with one code a row (the header names the columns; see COLUMN_NAMES)."""
    path = Path(path)
    rows, extra = _sheet_rows(path)
    header_at = next((i for i, row in enumerate(rows) if any(c.strip() for c in row)), None)
    if header_at is None:
        raise problem(path, "the spreadsheet is empty", hint="put one code a row under a header row")
    header = rows[header_at]
    columns: dict[str, int] = {}
    problems: list[Problem] = []
    for j, cell in enumerate(header):
        key = _HEADER.get(re.sub(r"[^a-z0-9]+", " ", cell.lower()).strip())
        if not cell.strip():
            continue
        if key is None:
            problems.append(Problem(str(path), f"unknown column '{cell}'", _cell_name(j, header_at + 1),
                                    "known columns: id, code, name, parent, brief, definition, when to use, "
                                    "when not to use, examples, units, roles, phrases, replaces; rename or delete it"))
        elif key in columns:
            problems.append(Problem(str(path), f"two columns mean '{key}'", _cell_name(j, header_at + 1)))
        else:
            columns[key] = j
    if "id" not in columns and "code" not in columns and "name" not in columns:
        problems.append(Problem(str(path), "no column names the codes", f"row {header_at + 1}",
                                "add a column 'code' (or 'id' and 'name')"))
    if problems:
        raise InputError(problems)

    def get(row: list[str], key: str) -> str:
        j = columns.get(key)
        return row[j].strip() if j is not None and j < len(row) and row[j] else ""

    book = Codebook(path=path, title=path.stem.replace("_", " "), version="")
    for row_meta in extra.get("about", []):
        if len(row_meta) >= 2 and row_meta[0].lower() in ("title", "version", "instrument", "description"):
            setattr(book, row_meta[0].lower(), row_meta[1])
        elif len(row_meta) >= 4 and row_meta[0].lower() == "changelog":
            book.changelog.append(dict(zip(("version", "date", "changes"), row_meta[1:4], strict=False)))
        elif len(row_meta) >= 2 and row_meta[0].lower() == "retired":
            book.retired += [v for v in re.split(r"[,;\s]+", row_meta[1]) if v and v not in book.retired]
    name_to_id: dict[str, str] = {}
    pending: list[tuple[Code, str, int]] = []
    for i, row in enumerate(rows[header_at + 1:], start=header_at + 2):
        if not any(c.strip() for c in row):
            continue
        cid, code_label, name = get(row, "id"), get(row, "code"), get(row, "name")
        if not cid and code_label and (name or (ID_RE.match(code_label) and code_label == code_label.lower())):
            cid = code_label  # "code" holds the ID when there is a name column, or when it looks like an ID
        if cid and not ID_RE.match(cid):
            cid = ".".join(_slug(part) for part in cid.split("."))
        name = name or code_label or cid
        if not name:
            problems.append(Problem(str(path), "a row without a code", f"row {i}",
                                    "fill in the code or delete the row"))
            continue
        code = Code(id=cid, name=name, line=i)
        for key in ("brief", "definition", "when_to_use", "when_not_to_use"):
            setattr(code, key, get(row, key))
        if get(row, "examples"):
            code.examples = _split_list(get(row, "examples"))
        for key, allowed in (("units", UNITS), ("roles", ROLES)):
            value = get(row, key)
            if value:
                names = [v.lower() for v in re.split(r"[,;/\s]+", value) if v and v.lower() not in ("any", "all")]
                for v in names:
                    if v not in allowed:
                        problems.append(Problem(str(path), f"unknown {key[:-1]} '{v}'",
                                                _cell_name(columns[key], i), f"{key}: " + ", ".join(allowed)))
                setattr(code, key, tuple(v for v in names if v in allowed) or getattr(code, key))
                setattr(code, f"_own_{key}", True)
        code.replaces = [v for v in re.split(r"[,;\s]+", get(row, "replaces")) if v]
        if get(row, "phrases"):
            code.rules.append(Rule(id="", code_id="", phrases=_split_list(get(row, "phrases"))))
        pending.append((code, get(row, "parent"), i))
        name_to_id[name.lower()] = cid
    # IDs: as given, else the parent's ID and the name as a slug.
    by_name = {c.name.lower(): c for c, _, _ in pending}
    resolved: dict[int, str] = {}

    def id_of(code: Code, parent_label: str, depth: int = 0) -> str:
        if code.id:
            return code.id
        if id(code) in resolved:
            return resolved[id(code)]
        prefix = ""
        if parent_label and depth < 20:
            parent = by_name.get(parent_label.lower())
            if parent is not None:
                parent_row = next(p for c, p, _ in pending if c is parent)
                prefix = id_of(parent, parent_row, depth + 1) + "."
            elif ID_RE.match(parent_label):
                prefix = parent_label + "."
        resolved[id(code)] = prefix + _slug(code.name)
        return resolved[id(code)]

    ids = [id_of(c, p) for c, p, _ in pending]
    for (code, _, _), cid in zip(pending, ids, strict=True):
        code.id = cid
    known = {c.id for c, _, _ in pending}
    for code, parent_label, i in pending:
        if parent_label:
            parent = parent_label if parent_label in known else getattr(by_name.get(parent_label.lower()), "id", None)
            if parent is None:
                problems.append(Problem(str(path), f"unknown parent '{parent_label}'", _cell_name(columns["parent"], i),
                                        "the parent must be the code or ID of another row"))
            code.parent = parent
        elif "." in code.id and code.id.rsplit(".", 1)[0] in known:
            code.parent = code.id.rsplit(".", 1)[0]
        for n, rule in enumerate(code.rules, start=1):
            rule.code_id, rule.id = code.id, f"{code.id}#{n}"
        book.codes.append(code)
    seen: dict[str, int] = {}
    for code in book.codes:
        if code.id in seen:
            problems.append(Problem(str(path), f"duplicate code '{code.id}' (first in row {seen[code.id]})",
                                    f"row {code.line}"))
        seen.setdefault(code.id, code.line)
    if "rules" in extra:
        problems += _read_rules_sheet(path, book, *extra["rules"])
    if problems:
        raise InputError(problems)
    _inherit(book)
    return book


def _inherit(book: Codebook) -> None:
    """Units and roles a row leaves empty come from its parent, as in YAML."""
    by_id = {c.id: c for c in book.codes}
    for code in book.codes:
        for attr in ("units", "roles"):
            node, steps = code, 0
            while not node.__dict__.get(f"_own_{attr}") and node.parent in by_id and steps < 50:
                node, steps = by_id[node.parent], steps + 1
            setattr(code, attr, getattr(node, attr))
    for code in book.codes:
        code.__dict__.pop("_own_units", None)
        code.__dict__.pop("_own_roles", None)


def _read_rules_sheet(path: Path, book: Codebook, sheet: str, rows: list[list[str]]) -> list[Problem]:
    """The ``Rules`` sheet of a workbook this module wrote: one rule a row, as YAML text."""
    from pipeline.codebook import _Checker, _Loader

    problems: list[Problem] = []
    counts: dict[str, int] = {}
    where = lambda i: f"sheet {sheet}, row {i}"  # noqa: E731
    for i, row in enumerate(rows[1:], start=2):
        if len(row) < 2 or not row[0]:
            continue
        code = book.get(row[0])
        if code is None:
            problems.append(Problem(str(path), f"rule for unknown code '{row[0]}'", where(i)))
            continue
        try:
            data = yaml.load(row[1], Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
        except yaml.YAMLError as e:
            problems.append(Problem(str(path), f"the rule is not valid YAML: {getattr(e, 'problem', e)}", where(i)))
            continue
        counts[code.id] = counts.get(code.id, 0) + 1
        checker = _Checker(path)
        rule = checker.rule(data, i, code, counts[code.id])
        problems += [replace(p, where=where(i)) for p in checker.problems]
        if rule is not None and not checker.problems:
            code.rules.append(rule)
    return problems


# --- xlsx ---------------------------------------------------------------------------------------------------------

XLSX_COLUMNS = [("id", "id", 34), ("name", "name", 28), ("parent", "parent", 24), ("brief", "brief definition", 40),
                ("definition", "full definition", 60), ("when_to_use", "when to use", 40),
                ("when_not_to_use", "when not to use", 40), ("examples", "examples", 40), ("units", "units", 12),
                ("roles", "roles", 14), ("replaces", "replaces", 30)]


def write_xlsx(book: Codebook, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    ws = wb.active
    ws.title = "Codes"
    ws.append([label for _, label, _ in XLSX_COLUMNS])
    for code in book.codes:
        values = []
        for key, _, _ in XLSX_COLUMNS:
            value = getattr(code, key)
            if key == "examples":
                value = "\n".join(value)
            elif key in ("units", "roles", "replaces"):
                value = ", ".join(value) if value else ("any" if key == "roles" else "")
            values.append(value or "")
        ws.append(values)
    for j, (_, _, width) in enumerate(XLSX_COLUMNS, start=1):
        ws.column_dimensions[ws.cell(1, j).column_letter].width = width
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = "B2"
    rules = wb.create_sheet("Rules")
    rules.append(["code id", "rule (YAML)"])
    for code in book.codes:
        for n, rule in enumerate(code.rules, start=1):
            text = yaml.dump(rule_to_dict(rule, code.id, n), Dumper=_Dumper, default_flow_style=True, sort_keys=False,
                             allow_unicode=True, width=10**6).strip()
            rules.append([code.id, text])
    rules.column_dimensions["A"].width = 40
    rules.column_dimensions["B"].width = 120
    about = wb.create_sheet("About")
    for key in ("title", "version", "instrument", "description"):
        if getattr(book, key):
            about.append([key, getattr(book, key)])
    for entry in book.changelog:
        about.append(["changelog", entry.get("version", ""), entry.get("date", ""), entry.get("changes", "")])
    if book.retired:
        about.append(["retired", ", ".join(book.retired)])
    about.column_dimensions["B"].width = 60
    with atomic_path(path) as tmp:
        wb.save(tmp)


# --- docx ---------------------------------------------------------------------------------------------------------


def describe_rule(rule: Rule) -> str:
    """One rule in words, for reviewers who do not read YAML."""
    bits = []
    if rule.phrases:
        how = "exactly these words" if rule.match == "lower" else "any form of the words"
        bits.append(f"phrases ({how}): " + "; ".join(f"“{p}”" for p in rule.phrases))
    if rule.regex:
        bits.append(f"regular expression: {rule.regex}")
    if rule.pattern:
        bits.append("token pattern: " + yaml.dump(rule.pattern, default_flow_style=True, width=10**6).strip())
    if rule.structure:
        settings = ", ".join(f"{k} {v}" for k, v in rule.params.items())
        bits.append(f"structure: {rule.structure}" + (f" ({settings})" if settings else ""))
    if rule.annotation:
        bits.append(f"requires the annotation ({rule.annotation})")
    negation = {"exclude": "", "allow": "; counts in a negated clause too",
                "require": "; counts only in a negated clause"}[rule.negated]
    return f"{rule.id}: " + "; ".join(bits) + negation


def write_docx(book: Codebook, path: Path) -> None:
    from docx import Document

    doc = Document()
    doc.add_heading(book.title or "Codebook", level=0)
    meta = [("Version", book.version), ("Instrument", book.instrument), ("Description", book.description),
            ("Retired codes (kept in coders' cells, not counted)", ", ".join(book.retired))]
    for label, value in meta:
        if value:
            p = doc.add_paragraph()
            p.add_run(f"{label}: ").bold = True
            p.add_run(value)
    if book.changelog:
        doc.add_heading("Changes", level=1)
        table = doc.add_table(rows=1, cols=3)
        table.style = "Table Grid"
        for cell, text in zip(table.rows[0].cells, ("Version", "Date", "Changes"), strict=False):
            cell.text = text
        for entry in book.changelog:
            cells = table.add_row().cells
            for cell, key in zip(cells, ("version", "date", "changes"), strict=False):
                cell.text = entry.get(key, "")
    doc.add_heading("Codes", level=1)
    depth = {}
    for code in book.codes:
        depth[code.id] = depth.get(code.parent, 0) + 1 if code.parent else 1
        doc.add_heading(f"{code.name}  ({code.id})", level=min(depth[code.id] + 1, 9))
        for label, value in (("Brief definition", code.brief), ("Full definition", code.definition),
                             ("When to use", code.when_to_use), ("When not to use", code.when_not_to_use)):
            if value:
                p = doc.add_paragraph()
                p.add_run(f"{label}: ").bold = True
                p.add_run(value)
        if code.examples:
            p = doc.add_paragraph()
            p.add_run("Examples:").bold = True
            for example in code.examples:
                doc.add_paragraph(f"“{example}”", style="List Bullet")
        if code.replaces:
            p = doc.add_paragraph()
            p.add_run("Replaces (codes renamed to this one or merged into it): ").bold = True
            p.add_run(", ".join(code.replaces))
        p = doc.add_paragraph()
        p.add_run("Applies to: ").bold = True
        p.add_run(" and ".join(f"{u}s" for u in code.units) + ", "
                  + ("any role" if not code.roles else " or ".join(code.roles)))
        if code.rules:
            p = doc.add_paragraph()
            p.add_run("Rules (automatic suggestions):").bold = True
            for rule in code.rules:
                doc.add_paragraph(describe_rule(rule), style="List Bullet")
    with atomic_path(path) as tmp:
        doc.save(tmp)
