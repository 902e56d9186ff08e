"""Injection: shell metacharacter payloads as parameter values, through the API, on
bash, sh (dash), zsh and ksh over a real sshd: the output is always the literal value.

Each payload is a parameter of one script per shell, printed three ways (an
unquoted placeholder, a quoted one, the ``MUSTER_PARAM_*`` variable); canary
payloads would create a file if any of them were ever executed.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.integration.server.helpers import save_script, wait_terminal
from tests.integration.server.sshd_server import SshdApi, sshd_api  # noqa: F401

SEP = "\x1e"


def corpus(canary: Path) -> list[str]:
    c = str(canary)
    return [
        f"$(touch {c})",
        f"`touch {c}`",
        f"; touch {c}",
        f"& touch {c} &",
        f"| touch {c}",
        f"&& touch {c}",
        f"|| touch {c}",
        f"\ntouch {c}\n",
        f"' ; touch {c} ; '",
        f'" ; touch {c} ; "',
        f"'$(touch {c})'",
        f'"$(touch {c})"',
        f"$(touch${{IFS}}{c})",
        f">{c}",
        f"<(touch {c})",
        f"${{x:=$(touch {c})}}",
        f"$((0)) $(touch {c})",
        f"\\$(touch {c})",
        f"'\"`touch {c}`\"'",
        "$HOME",
        "${HOME}",
        "$((6*7))",
        "$'\\x41'",
        "{a,b}",
        "*",
        "?",
        "[a-z]*",
        "~root",
        "!!",
        "#not a comment",
        "-n",
        "--help",
        "-e \\n",
        "%s%n%d",
        "a  b\tc",
        " leading and trailing ",
        "\r\n",
        "'",
        '"',
        "\\",
        "EOF",
        "\nEOF\n",
        "é ✓ 日本 \U0001f600",
        "",
    ]


BODY = "printf '%s\\036' {refs}\n"


@pytest.mark.parametrize("shell", ["bash", "sh", "zsh", "ksh"])
def test_payloads_come_out_literal(
    sshd_api: SshdApi,  # noqa: F811
    shell: str,
    tmp_path: Path,
) -> None:
    canary = Path("/tmp") / f"muster-injection-{uuid.uuid4().hex}"
    values = corpus(canary)
    names = [f"p{i}" for i in range(len(values))]
    refs = " ".join(f'${{{n}}} "${{{n}}}" "$MUSTER_PARAM_{n.upper()}"' for n in names)
    script = save_script(
        sshd_api.api,
        name=f"inject-{shell}",
        shell=shell,
        body=BODY.format(refs=refs),
        parameters=[{"name": n, "type": "string", "default": ""} for n in names],
    )
    started = sshd_api.api.post(
        f"/api/v1/automation/scripts/{script['id']}/execute",
        json={
            "host_ids": [sshd_api.hosts[0]],
            "parameter_values": dict(zip(names, values, strict=True)),
        },
    )
    assert started.status_code == 201, started.text
    done = wait_terminal(sshd_api.api, started.json()["id"])
    assert done["status"] == "succeeded", done
    host = done["hosts"][0]["host"]
    log = sshd_api.api.get(
        f"/api/v1/automation/executions/{done['id']}/hosts/{host}/log", params={"stream": "stdout"}
    )
    assert log.status_code == 200
    printed = log.text.split(SEP)
    assert printed[-1] == ""
    expected = [v for v in values for _ in range(3)]
    for i, (got, want) in enumerate(zip(printed[:-1], expected, strict=True)):
        assert got == want, (shell, i // 3, want)
    assert not canary.exists(), f"a payload ran on {shell}"
