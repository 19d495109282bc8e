"""De-identification: names by full name and by their parts, in any case; e-mails and phones; the leak check."""

import pytest

from pipeline.deidentify import Deidentifier, load_key
from pipeline.errors import InputError
from pipeline.study import Settings, Study


def key(tmp_path, text):
    (tmp_path / "key.csv").write_text(text, encoding="utf-8")
    return load_key(Study(tmp_path, Settings(deidentify_key="key.csv")))


def test_names_are_replaced_in_any_case_and_by_their_parts(tmp_path):
    deid = key(tmp_path, "name,pseudonym\nAnna Novak,Client-7\nTomás Berg,Therapist-2\n")
    assert deid("Thanks, Anna. ANNA NOVAK was here; so was novak.") == \
        "Thanks, Client-7. Client-7 was here; so was Client-7."
    assert deid("Dr. Berg said Tomás would call") == "Dr. Therapist-2 said Therapist-2 would call"
    assert deid("Annabel and Bergen stay") == "Annabel and Bergen stay"  # whole words only


def test_emails_and_phone_numbers(tmp_path):
    deid = Deidentifier([])
    assert deid("write to a.b@example.org or call +44 20 7946 0958") == "write to [email] or call [phone]"
    assert deid("(2.0) at 00:12:31, page 12") == "(2.0) at 00:12:31, page 12"


def test_key_file_problems(tmp_path):
    with pytest.raises(InputError) as e:
        key(tmp_path, "who,alias\nA,B\n")
    assert "key.csv, row 1" in str(e.value)
    with pytest.raises(InputError) as e:
        key(tmp_path, "name,pseudonym\nAnna,\n")
    assert "row 2" in str(e.value)
    with pytest.raises(InputError) as e:
        load_key(Study(tmp_path, Settings(deidentify_key="missing.csv")))
    assert "missing.csv" in str(e.value)
