"""Script library over real HTTP: create-or-update, versions, restore, identical saves."""

from __future__ import annotations

import httpx

PATCH = {
    "name": "patch",
    "shell": "bash",
    "body": "echo patching ${target_dir} dry=${dry_run}\n",
    "parameters": [
        {"name": "target_dir", "type": "string", "required": True, "description": "where"},
        {"name": "dry_run", "type": "boolean", "default": True},
    ],
    "timeout": 60,
    "description": "apply the patch",
    "tags": ["ops"],
}


def test_create_update_versions_and_restore(api: httpx.Client) -> None:
    first = api.post("/api/v1/automation/scripts", json=PATCH)
    assert first.status_code == 201, first.text
    script = first.json()
    assert script["version"] == 1 and script["created_version"] is True
    assert len(script["content_hash"]) == 64

    same = api.post("/api/v1/automation/scripts", json=PATCH)
    assert same.status_code == 200
    assert same.json()["created_version"] is False
    assert same.json()["version"] == 1

    changed = api.post("/api/v1/automation/scripts", json={**PATCH, "body": "echo v2\n"})
    assert changed.status_code == 201
    assert changed.json()["version"] == 2 and changed.json()["id"] == script["id"]

    versions = api.get(f"/api/v1/automation/scripts/{script['id']}/versions").json()
    assert [v["number"] for v in versions["items"]] == [2, 1]
    assert versions["items"][1]["content_hash"] == script["content_hash"]
    assert all(v["created_at"] for v in versions["items"])

    v1 = api.get(f"/api/v1/automation/scripts/{script['id']}/versions/1").json()
    assert v1["body"] == PATCH["body"]

    restored = api.post(f"/api/v1/automation/scripts/{script['id']}/versions/1/restore")
    assert restored.status_code == 200, restored.text
    assert restored.json()["version"] == 3
    assert restored.json()["content_hash"] == script["content_hash"]
    assert api.get(f"/api/v1/automation/scripts/{script['id']}").json()["body"] == PATCH["body"]

    listing = api.get("/api/v1/automation/scripts").json()
    assert [s["name"] for s in listing["items"]] == ["patch"]
    by_name = api.get("/api/v1/automation/scripts/patch")
    assert by_name.status_code == 200 and by_name.json()["id"] == script["id"]


def test_delete_removes_script_and_history(api: httpx.Client) -> None:
    sid = api.post("/api/v1/automation/scripts", json=PATCH).json()["id"]
    assert api.delete(f"/api/v1/automation/scripts/{sid}").status_code == 204
    gone = api.get(f"/api/v1/automation/scripts/{sid}")
    assert gone.status_code == 404
    assert gone.json()["message"]
    assert api.get("/api/v1/automation/scripts").json()["items"] == []


def test_bad_scripts_are_rejected_naming_the_field(api: httpx.Client) -> None:
    cases = [
        ({**PATCH, "colour": "red"}, "colour"),
        ({**PATCH, "shell": "fish"}, "shell"),
        ({**PATCH, "timeout": -1}, "timeout"),
        ({**PATCH, "name": "-bad name"}, "name"),
        (
            {**PATCH, "parameters": [{"name": "x", "type": "integer", "default": "many"}]},
            "parameters.0",
        ),
        ({**PATCH, "parameters": [{"name": "x", "kind": "string"}]}, "parameters.0.kind"),
        ({k: v for k, v in PATCH.items() if k != "body"}, "body"),
    ]
    for body, field in cases:
        resp = api.post("/api/v1/automation/scripts", json=body)
        assert resp.status_code == 422, (field, resp.text)
        fields = [d["field"] for d in resp.json()["detail"]]
        assert field in fields, (field, resp.json())
    assert api.get("/api/v1/automation/scripts").json()["total"] == 0
