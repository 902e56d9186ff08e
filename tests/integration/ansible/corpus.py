"""Inventories and patterns muster must read exactly as ansible-core 2.19 does.

Each case is a set of files written to a fresh directory, the ``-i`` sources
(relative to it) and the patterns to try. Built from Ansible's documentation
(inventory guide, patterns guide) and its behaviour on the edges the
documentation leaves open. A case may name differences from
docs/ansible-differences.md that it shows on purpose: ``(id, part)`` where
part is ``"list"``, ``"graph"`` or a pattern.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    name: str
    files: dict[str, str]
    sources: tuple[str, ...]
    patterns: tuple[str, ...] = ()
    #: Both refuse; muster's message must contain this.
    refused: str | None = None
    differences: tuple[tuple[str, str], ...] = field(default=())
    #: Compare ``ansible-inventory --graph`` too (one more Ansible call, ~0.5 s).
    graph: bool = False


FLEET_INI = """\
# hosts before any section are ungrouped
lonely ansible_user=solo
jump:2222

[web]
web3 ansible_host=10.0.0.3
web1 ansible_host=10.0.0.1 http_port=8080 enabled=True tags="['a', 'b']"
web2

[db]
db2
db1 ansible_port=5432

[prod:children]
db
web

[prod]
p1

[prod:vars]
env=production # an inline comment stays, as in Ansible
tier='gold' # a quoted literal drops it
ntp="ntp.example.com"
"""

CORPUS: tuple[Case, ...] = (
    Case(
        "group_vars_from_two_sources",
        {
            "a/hosts": "[web]\nh1\n[prod:children]\nweb\n",
            "a/group_vars/web.yml": "x: a-web\n",
            "b/hosts": "[prod]\nh2\n",
            "b/group_vars/prod.yml": "x: b-prod\n",
        },
        ("a/hosts", "b/hosts"),
        ("prod",),
        differences=(("group-vars-from-several-sources", "list"),),
    ),
    Case(
        "refused_by_muster_whitespace_name",
        {"inv.ini": '[web]\n"my host" ansible_host=10.0.0.9\nw1\n'},
        ("inv.ini",),
        differences=(("names-with-whitespace", "load"),),
    ),
    Case(
        "refused_by_muster_port",
        {"inv.ini": "[web]\nw1:99999\n"},
        ("inv.ini",),
        differences=(("port-out-of-range", "load"),),
    ),
    Case(
        "refused_by_muster_connection",
        {"inv.ini": "[win]\nw1 ansible_connection=winrm\n"},
        ("inv.ini",),
        differences=(("unsupported-connection", "load"),),
    ),
    Case(
        "selector_without_terms",
        {"inv.ini": "[web]\nw1\nw2\n"},
        ("inv.ini",),
        ("web", ",", " : "),
        differences=(("selector-without-terms", ","), ("selector-without-terms", " : ")),
    ),
    Case(
        "ini_fleet",
        {"hosts": FLEET_INI},
        ("hosts",),
        (
            "all",
            "all[0]",
            "all[-1]",
            "all[1:3]",
            "prod",
            "prod[0]",
            "prod[1:]",
            "prod[-1]",
            "web[0]",
            "web,db",
            "db:web",
            "prod:!web",
            "prod:&db",
            "*1",
            "~web[12]",
            "web[5]",
            "ungrouped",
            "jump",
        ),
        graph=True,
    ),
    Case(
        "ini_pending_children",
        {
            "inv.ini": """\
[top:children]
mid
leaf

[leaf]
l2
l1

[mid:children]
leaf

[mid]
m1

[top]
t1
""",
        },
        ("inv.ini",),
        ("top", "top[0]", "top[1:2]", "top[3:0]", "top[2:1]", "top[:2]", "top[0-1]", "mid[-1]"),
        graph=True,
    ),
    Case(
        "ini_subscripts",
        {"inv": "[g]\na\nb\nc\nd\n[g2]\ne\nf\n"},
        ("inv",),
        (
            "g[0]",
            "g[3]",
            "g[-1]",
            "g[-4]",
            "g[1:2]",
            "g[1:]",
            "g[:1]",
            "g[0:0]",
            "g[2:0]",
            "g[3:1]",
            "g[0-2]",
            "g*[0]",
            "g*[4]",
            "g,g2[1]",
            "g[a]",
            "g2[0]:g[0]",
        ),
    ),
    Case(
        "ini_ports_and_ipv6",
        {
            "inv.ini": """\
[web]
web1:2222
10.0.0.5:2200
fe80::1
[fe80::2]:2201
2001:db8::7
odd_:22
[web:vars]
ansible_user=deploy
""",
        },
        ("inv.ini",),
        ("web", "fe80::1", "2001:db8::7", "fe80::1,web1", "web1:2222", "odd_:22", "web[1:2]"),
    ),
    Case(
        "ini_ranges",
        {
            "inv.ini": """\
[web]
web[01:03].example.com
[db]
db-[a:c]
[nodes]
node[:2]
x[1:10:4]
y[3:1]
[mixed]
m[1:2]-[a:b]
""",
        },
        ("inv.ini",),
        ("all", "web[1:]", "~db-[ab]", "node*", "mixed[-1]", "x*"),
    ),
    Case(
        "ini_range_width_refused",
        {"inv.ini": "[web]\nweb[01:100]\n"},
        ("inv.ini",),
        refused="same width",
    ),
    Case(
        "ini_undeclared_child_refused",
        {"inv.ini": "[a:children]\nb\n[a]\nh1\n"},
        ("inv.ini",),
        refused="includes undefined group 'b'",
    ),
    Case(
        "ini_undeclared_vars_refused",
        {"inv.ini": "[web]\nw1\n[ghost:vars]\nx=1\n"},
        ("inv.ini",),
        refused="[ghost:vars] not valid for undefined group 'ghost'",
    ),
    Case(
        "ini_ungrouped_and_all_vars",
        {
            "inv.ini": """\
solo1
solo2 x=2
[ungrouped:vars]
x=1
y=ungrouped
[all:vars]
y=all
z=3.5
[g]
g1
""",
        },
        ("inv.ini",),
        ("ungrouped", "all", "solo*"),
        graph=True,
    ),
    Case(
        "ini_group_priority",
        {
            "inv.ini": """\
[a]
h1
[b]
h1
h2
[c:children]
a
[a:vars]
color=red
size=a
[b:vars]
color=blue
ansible_group_priority=10
size=b
[c:vars]
size=c
deep=c
""",
        },
        ("inv.ini",),
        ("a:b", "b:a", "c"),
    ),
    Case(
        "ini_host_and_group_same_name",
        {"inv.ini": "[web]\nweb\nw2\n[db]\nweb\nd1\n"},
        ("inv.ini",),
        ("web", "&web", "!web", "all:!web", "all:&web", "web*", "db:&web"),
    ),
    Case(
        "ini_implicit_localhost",
        {"inv.ini": "[web]\nw1\nw2\n"},
        ("inv.ini",),
        ("localhost", "127.0.0.1", "::1", "localhost,web", "all", "localhost[0]", "web:&localhost"),
    ),
    Case(
        "ini_explicit_localhost",
        {"inv.ini": "localhost ansible_connection=local\n[web]\nw1\n"},
        ("inv.ini",),
        ("localhost", "127.0.0.1", "all", "local*"),
    ),
    Case(
        "ini_legacy_and_templates",
        {
            "inv.ini": """\
[web]
w1 ansible_ssh_host=10.1.0.1 ansible_host=10.9.9.9 ansible_ssh_user=old
w2 ansible_host="{{ inventory_hostname }}.lan" ansible_port="{{ base_port + 2 }}"
[web:vars]
base_port=2200
ansible_user=deploy
ansible_ssh_port=2022
""",
        },
        ("inv.ini",),
        ("web",),
    ),
    Case(
        "ini_second_port",
        {"inv.ini": "[a]\nh1:2201\n[b]\nh1:2202\n"},
        ("inv.ini",),
        ("all",),
        differences=(("port-on-second-appearance", "list"),),
    ),
    Case(
        "ini_host_vars_named_like_group",
        {"inv.ini": "[web]\nw1\n[other]\nweb color=red\n"},
        ("inv.ini",),
        ("web",),
        differences=(("host-vars-go-to-same-named-group", "list"),),
    ),
    Case(
        "yaml_basic",
        {
            "inv.yml": """\
all:
  hosts:
    bastion:
      ansible_host: 192.0.2.1
  vars:
    ntp: ntp.example.com
  children:
    web:
      hosts:
        web2:
        web1:2222:
          http_port: 8080
          enabled: true
      vars:
        tier: front
    db:
      hosts:
        db1:
      children:
        replicas:
          hosts:
            r1:
            r2:
""",
        },
        ("inv.yml",),
        ("all", "all[0]", "all[-1]", "db", "db[1:]", "web:db", "ungrouped", "~r\\d", "bastion"),
        graph=True,
    ),
    Case(
        "yaml_strings_and_unknown_keys",
        {
            "inv.yaml": """\
all:
  children:
    web:
      hosts: web1
      extra:
        note: skipped with a warning
    db:
      children: replicas
    replicas:
      hosts:
        r1:
    empty:
""",
        },
        ("inv.yaml",),
        ("web", "db", "empty", "all"),
        graph=True,
    ),
    Case(
        "yaml_ipv6_and_ranges",
        {
            "hosts.yml": """\
ipv6:
  hosts:
    fe80::10:
    "[fe80::11]:2222":
    node[:2]:
      role: node
""",
        },
        ("hosts.yml",),
        ("ipv6", "fe80::10", "node1", "ipv6[-1]"),
    ),
    Case(
        "group_and_host_vars_dirs",
        {
            "site/hosts": """\
[web]
web1 from_inventory=host
web2
[db]
db1
[web:vars]
layer=inventory-group
from_inventory=group
""",
            "site/group_vars/all.yml": "layer: group_vars-all\nall_only: yes\n",
            "site/group_vars/web.yml": "layer: group_vars-web\nweb_file: 1\n",
            "site/group_vars/db/main.yml": "db_a: 1\nshared: main\n",
            "site/group_vars/db/zz.yaml": "shared: zz\n",
            "site/group_vars/db/notes.txt": "ignored: true\n",
            "site/host_vars/web1.yml": "from_inventory: host_vars\n",
            "site/host_vars/db1": "---\nhost_file: plain\n",
        },
        ("site/hosts",),
        ("all", "web"),
    ),
    Case(
        "directory_inventory",
        {
            "inv/01-hosts.ini": "[web]\nw1\nw2\n[web:vars]\nsrc=ini\n",
            "inv/02-more.yml": "db:\n  hosts:\n    d1:\n  vars:\n    src: yaml\n",
            "inv/sub/03-extra": "[web]\nw3\n",
            "inv/README.md": "# not an inventory\n",
            "inv/.hidden": "[hidden]\nnope\n",
            "inv/group_vars/web.yml": "from_dir_vars: true\n",
        },
        ("inv",),
        ("all", "web", "web[-1]"),
        graph=True,
    ),
    Case(
        "several_sources",
        {
            "a.ini": "[web]\nw1 v=a\nw2\n[web:vars]\nshared=a\n",
            "b.yml": (
                "web:\n  hosts:\n    w3:\n    w1:\n      v: b\n  vars:\n    shared: b\n"
                "db:\n  hosts:\n    d1:\n"
            ),
        },
        ("a.ini", "b.yml"),
        ("all", "web", "web[2]", "all[-1]"),
        graph=True,
    ),
    Case(
        "host_lists",
        {"extra.ini": "[g]\nx1\n"},
        ("alpha,beta:2222,,gamma", "extra.ini", "x1,delta,"),
        ("all", "ungrouped", "beta", "g", "all[-1]"),
        graph=True,
    ),
    Case(
        "pattern_syntax",
        {
            "inv.ini": """\
[web]
web1
web2
web3
[db]
db1
[staging]
web1
db1
[prod]
web2
web3
""",
        },
        ("inv.ini",),
        (
            "staging,web:&prod",
            "~web[12]:db",
            "web,",
            ":web",
            "web db",
            "web:22",
            "web[0-1]",
            "*",
            "all:&prod:!web2",
            "!staging",
            "&prod",
            "web:!staging:&prod",
            " web , db ",
            "~(web|db)1",
            "web?",
            "web[!1]*",
            "prod:staging",
        ),
    ),
    Case(
        "deep_nesting",
        {
            "inv.yml": """\
all:
  children:
    region:
      hosts:
        r0:
      children:
        east:
          hosts:
            e1:
          children:
            east_a:
              hosts:
                ea1:
        west:
          hosts:
            w1:
""",
        },
        ("inv.yml",),
        ("region", "region[-1]", "all", "east*"),
        graph=True,
    ),
)
