"""SSHAuth: bad key files are refused up front, naming the file and the problem;
secrets never show in repr; each way of logging in builds the options it says."""

from __future__ import annotations

from pathlib import Path

import asyncssh
import pytest

from muster.domain.credentials import CredentialKind, SshCredential
from muster.domain.secret import Secret
from muster.errors import NotFoundError, ValidationError
from muster.ssh_auth import AuthKind, SSHAuth


def _key(path: Path, passphrase: str | None = None) -> Path:
    key = asyncssh.generate_private_key("ssh-ed25519")
    fmt = "openssh" if passphrase is None else "pkcs8-pem"
    path.write_bytes(key.export_private_key(fmt, passphrase))
    path.chmod(0o600)
    path.with_suffix(".pub").write_bytes(key.export_public_key())
    return path


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"nope: no such file"):
        SSHAuth.from_keyfile(tmp_path / "nope")


def test_a_directory_is_not_a_key_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not a regular file"):
        SSHAuth.from_keyfile(tmp_path)


def test_a_public_key_is_not_a_private_key(tmp_path: Path) -> None:
    key = _key(tmp_path / "id")
    with pytest.raises(ValidationError, match=r"id\.pub: not a private key"):
        SSHAuth.from_keyfile(key.with_suffix(".pub"))


def test_an_encrypted_key_needs_its_passphrase(tmp_path: Path) -> None:
    key = _key(tmp_path / "id", passphrase="open sesame")
    with pytest.raises(ValidationError, match="encrypted") as err:
        SSHAuth.from_keyfile(key)
    assert err.value.field == "passphrase"
    with pytest.raises(ValidationError, match="passphrase does not open it"):
        SSHAuth.from_keyfile(key, passphrase="wrong")
    auth = SSHAuth.from_keyfile(key, passphrase="open sesame", username="deploy")
    assert auth.kind is AuthKind.KEYFILE and auth.username == "deploy"


def test_repr_and_options_never_show_the_passphrase(tmp_path: Path) -> None:
    key = _key(tmp_path / "id", passphrase="hunter2-very-secret")
    auth = SSHAuth.from_keyfile(key, passphrase="hunter2-very-secret")
    opts = auth.ssh_options()
    for text in (repr(auth), str(auth), repr(opts)):
        assert "hunter2" not in text
    assert str(key) in repr(auth)
    assert opts.passphrase is not None and opts.passphrase.reveal() == "hunter2-very-secret"


def test_a_key_file_login_turns_the_agent_off(tmp_path: Path) -> None:
    key = _key(tmp_path / "id")
    opts = SSHAuth.from_keyfile(str(key), known_hosts=tmp_path / "kh").ssh_options()
    assert opts.client_keys == (str(key),)
    assert opts.use_agent is False
    assert opts.known_hosts == str(tmp_path / "kh")


def test_from_agent_needs_a_socket(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(ValidationError, match="SSH_AUTH_SOCK is not set"):
        SSHAuth.from_agent()
    with pytest.raises(ValidationError, match=r"agent socket .*gone does not exist"):
        SSHAuth.from_agent(tmp_path / "gone")
    sock = tmp_path / "agent.sock"
    sock.touch()
    monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
    opts = SSHAuth.from_agent().ssh_options()
    assert opts.agent_path == str(sock) and opts.use_agent and not opts.client_keys


class _Store:
    def __init__(self) -> None:
        self.cred = SshCredential(
            "deploy", CredentialKind.PASSWORD, Secret("pa55-word-xyz"), username="root"
        )

    def open_credential(self, id_or_name: str) -> SshCredential:
        if id_or_name != "deploy":
            raise NotFoundError(f"credential {id_or_name} not found")
        return self.cred


def test_from_credential_checks_the_name_now_and_hides_the_store() -> None:
    with pytest.raises(NotFoundError, match="credential nope"):
        SSHAuth.from_credential("nope", _Store())
    with pytest.raises(ValidationError, match="name is empty"):
        SSHAuth.from_credential("", _Store())
    auth = SSHAuth.from_credential("deploy", _Store())
    assert "pa55" not in repr(auth) and "deploy" in repr(auth)
    opts = auth.ssh_options()
    assert opts.credentials is not None and not opts.use_agent and not opts.client_keys
