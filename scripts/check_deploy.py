"""Validates the deployment artefacts: the Helm chart and the plain manifests in deploy/.

Run by scripts/check-deploy (which provides a venv with helm-sdkpy and kubernetes-validate):

1. `helm lint` of the chart with each value set below (Helm's own Go library, through helm-sdkpy).
2. A real `helm install` of the chart with each value set, against a tiny in-process fake API server
   that accepts every object and records it. helm-sdkpy has no `template`/dry-run entry point, so this is
   how the rendered objects are obtained: they are exactly what Helm would send to a cluster. Release
   records go to Helm's memory driver (HELM_DRIVER=memory), so nothing else is needed.
3. Every rendered object and every object in deploy/*.yaml is validated against the Kubernetes JSON
   schemas (kubernetes-validate, strict: unknown fields are errors). CRD-backed kinds (ServiceMonitor)
   are skipped, since no Kubernetes schema describes them; that is reported.
4. Security and least-privilege invariants on the same objects (see `check_security`, `check_rbac`).
5. Value sets that must be refused (replicas > 1 without leader election, ...) fail to render.
6. The Argo CD health script gives the expected health for sample objects (Lua 5.1 through lupa).
7. The Dockerfile passes hadolint and pins its base images by digest; every workflow in
   .github/workflows matches the GitHub workflow schema, and the release workflow pins its actions by
   commit and publishes the image the chart and deploy/ name.
8. The chart works as a subchart of a parent chart that sets `global` values.
9. The chart's README.md values table is the one generated from values.yaml's `# --` comments
   (`scripts/check-deploy --write-chart-readme` rewrites it), and documents every value.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import shutil
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "deploy" / "helm" / "blaxel-operator"
DEPLOY = REPO / "deploy"
NAMESPACE = "blaxel-system"
RELEASE = "blaxel-operator"

# Value sets the chart must lint, render and validate cleanly with.
VALUE_SETS: dict[str, dict] = {
    "defaults": {},
    "ha": {"replicaCount": 2, "leaderElection": {"enabled": True}},
    "credentials-create": {
        "credentials": {"create": True, "apiKey": "not-a-real-key"},
        "defaultCredentialsNamespaces": ["team-a", "team-b"],
    },
    "no-netpol-servicemonitor": {
        "networkPolicy": {"enabled": False},
        "metrics": {
            "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
            "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}},
        },
    },
    "single-without-leader-election": {"replicaCount": 1, "leaderElection": {"enabled": False}},
    "watch-namespace": {
        "watchNamespace": "team-a",
        "logFormat": "text",
        "extraEnv": [{"name": "BLAXEL_MAX_REINVITES", "value": "5"}],
    },
    "extras": {
        "image": {"digest": "sha256:" + "0" * 64},
        "logLevel": "info,blaxel_operator=debug",
        "apiUrl": "http://blaxel-simulator.blaxel-system:8787/v0",
        "allowInsecureApiUrl": True,
        "extraArgs": ["--api-key-file=/etc/blaxel/apiKey"],
        "extraVolumes": [{"name": "api-key", "secret": {"secretName": "blaxel-key"}}],
        "extraVolumeMounts": [{"name": "api-key", "mountPath": "/etc/blaxel", "readOnly": True}],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "blaxel-operator"}},
            }
        ],
    },
    # Installed with --skip-crds (see helm_render): the CRDs come from the templated copy.
    "crds-templated": {"crds": {"templated": True}},
    # No Secret writes: private previews get no token.
    "no-preview-tokens": {"previewTokens": {"enabled": False}},
}

# Value sets rendered as with `helm install --skip-crds` (helm-sdkpy has no such option: the chart is
# copied without its crds/ folder).
SKIP_CRDS = {"crds-templated"}

# Value sets the chart must refuse, with a fragment of the expected message.
MUST_FAIL: dict[str, tuple[dict, str]] = {
    "replicas-without-leader-election": (
        {"replicaCount": 2, "leaderElection": {"enabled": False}},
        "requires leaderElection.enabled=true",
    ),
    "credentials-create-without-key": ({"credentials": {"create": True}}, "needs credentials.apiKey"),
    # values.schema.json catches typos that Helm would otherwise ignore silently.
    "unknown-value": ({"replicas": 2}, "additional properties 'replicas' not allowed"),
    "bad-log-format": ({"logFormat": "yaml"}, "at '/logFormat'"),
    "http-api-url": ({"apiUrl": "http://api.blaxel.ai/v0"}, "at '/apiUrl'"),
    "bad-digest": ({"image": {"digest": "latest"}}, "at '/image/digest'"),
    "resources-typo": ({"resources": {"limit": {"cpu": "1"}}}, "additional properties 'limit' not allowed"),
    "security-context-typo": (
        {"securityContext": {"readOnlyRootFileSystem": True}},
        "additional properties 'readOnlyRootFileSystem' not allowed",
    ),
}

# Kinds backed by CRDs that the Kubernetes schemas do not describe.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}

def served_kinds() -> list[tuple[str, str]]:
    """(plural, kind) of every CRD in crds/: the one list of kinds the checks below derive from, so a new
    kind that the RBAC, the Argo CD patch or the fake API server forgets fails here."""
    docs = yaml.safe_load_all((REPO / "crds" / "blaxel.ai.yaml").read_text())
    return [(d["spec"]["names"]["plural"], d["spec"]["names"]["kind"]) for d in docs if d]


KINDS = served_kinds()

# The RBAC the operator needs, exactly: (apiGroup, resource) -> verbs.
CLUSTER_RULES = {
    **{("blaxel.ai", plural): {"get", "list", "watch", "patch", "update"} for plural, _ in KINDS},
    **{("blaxel.ai", f"{plural}/status"): {"get", "patch"} for plural, _ in KINDS},
    # Secrets: credentials and connection secrets read by name; preview tokens' Secrets written.
    ("", "secrets"): {"get", "create", "patch", "delete"},
    ("events.k8s.io", "events"): {"create", "patch"},
    ("", "events"): {"create", "patch"},
}
LEASE_RULES = {("coordination.k8s.io", "leases"): {"get", "create", "update"}}
# The record of recent removals (the mass-removal guard survives restarts): one ConfigMap; and the digest
# key of secret values sent (status.secretDigest survives restarts): one Secret, created once.
REMOVALS_RULES = {("", "configmaps"): {"get", "create", "update"}, ("", "secrets"): {"get", "create"}}


def own_namespace_rules(leader_election: bool) -> dict[tuple[str, str], set[str]]:
    """What the Role in the operator's own namespace grants: the removal record, and the Lease."""
    rules = dict(REMOVALS_RULES)
    if leader_election:
        rules.update(LEASE_RULES)
    return rules

failures: list[str] = []


def fail(where: str, message: str) -> None:
    failures.append(f"{where}: {message}")
    print(f"  FAIL {where}: {message}")


def deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# --- a fake API server that accepts what Helm installs --------------------------------------------

# (group, version) -> [(plural, kind, namespaced)]
RESOURCES = {
    ("", "v1"): [
        ("namespaces", "Namespace", False),
        ("serviceaccounts", "ServiceAccount", True),
        ("secrets", "Secret", True),
        ("services", "Service", True),
        ("configmaps", "ConfigMap", True),
    ],
    ("apps", "v1"): [("deployments", "Deployment", True)],
    ("rbac.authorization.k8s.io", "v1"): [
        ("clusterroles", "ClusterRole", False),
        ("clusterrolebindings", "ClusterRoleBinding", False),
        ("roles", "Role", True),
        ("rolebindings", "RoleBinding", True),
    ],
    ("networking.k8s.io", "v1"): [("networkpolicies", "NetworkPolicy", True)],
    ("policy", "v1"): [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    ("apiextensions.k8s.io", "v1"): [("customresourcedefinitions", "CustomResourceDefinition", False)],
    ("monitoring.coreos.com", "v1"): [
        ("servicemonitors", "ServiceMonitor", True),
        ("prometheusrules", "PrometheusRule", True),
    ],
    ("blaxel.ai", "v1alpha1"): [(plural, kind, True) for plural, kind in KINDS],
}


class FakeApiServer:
    """Just enough of the Kubernetes API for `helm install --wait=false`: discovery, and objects that can
    be created and read back. Everything created is kept in `created`, in order."""

    def __init__(self, skip_crds: bool = False) -> None:
        self.skip_crds = skip_crds
        self.created: list[dict] = []
        self.requests: list[str] = []
        self.store: dict[str, dict] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the output for failures
                pass

            def reply(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                fake.requests.append(f"GET {self.path}")
                self.reply(*fake.get(self.path.split("?")[0]))

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                fake.requests.append(f"{self.command} {self.path} {self.headers.get('Content-Type')}")
                if "protobuf" in (self.headers.get("Content-Type") or ""):
                    # Helm's release record (a Secret, sent by a typed client as protobuf): keep it
                    # opaque, it is not part of the chart.
                    self.reply(*fake.release_record(self.path.split("?")[0], raw))
                    return
                self.reply(*fake.create(self.path.split("?")[0], json.loads(raw or b"{}")))

            def do_PUT(self):
                self.do_POST()

            def do_PATCH(self):
                self.reply(405, status(405, "MethodNotAllowed", "patch is not supported here"))

            def do_DELETE(self):
                self.reply(404, status(404, "NotFound", "not found"))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def kubeconfig(self) -> str:
        return yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                "users": [{"name": "fake", "user": {}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                "current-context": "fake",
            }
        )

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def get(self, path: str) -> tuple[int, dict]:
        if path == "/version":
            return 200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"}
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/apis":
            groups = [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                    "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v},
                }
                for (g, v) in RESOURCES
                if g
            ]
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        for (g, v), resources in RESOURCES.items():
            if path == (f"/apis/{g}/{v}" if g else f"/api/{v}"):
                return 200, {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": f"{g}/{v}" if g else v,
                    "resources": [
                        {
                            "name": plural,
                            "singularName": kind.lower(),
                            "namespaced": namespaced,
                            "kind": kind,
                            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                        }
                        for plural, kind, namespaced in resources
                    ],
                }
        with self.lock:
            obj = self.store.get(path)
            if obj is None and is_collection(path):
                prefix = path + "/"
                items = [
                    o for p, o in self.store.items() if p.startswith(prefix) and "/" not in p[len(prefix) :]
                ]
                obj = {
                    "kind": "List",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": "1"},
                    "items": items,
                }
        if obj is not None:
            return 200, obj
        return 404, status(404, "NotFound", f"{path} not found")

    def create(self, path: str, body: dict) -> tuple[int, dict]:
        name = body.get("metadata", {}).get("name", "")
        obj = copy.deepcopy(body)
        obj.setdefault("metadata", {}).update({"resourceVersion": "1", "uid": f"uid-{len(self.created)}"})
        if body.get("kind") == "CustomResourceDefinition":
            # Helm waits for the CRDs it installs to be established.
            names = body["spec"]["names"]
            obj["status"] = {
                "conditions": [
                    {"type": "NamesAccepted", "status": "True"},
                    {"type": "Established", "status": "True"},
                ],
                "acceptedNames": names,
            }
        if (
            self.skip_crds
            and body.get("kind") == "CustomResourceDefinition"
            and "meta.helm.sh/release-name" not in body.get("metadata", {}).get("annotations", {})
        ):
            return 201, obj
        with self.lock:
            if path.endswith(f"/{name}"):  # PUT to the object's own path
                self.store[path] = obj
            else:
                self.store[f"{path}/{name}"] = obj
            self.created.append(body)
        return 201, obj

    def release_record(self, path: str, raw: bytes) -> tuple[int, dict]:
        found = re.search(rb"sh\.helm\.release\.v1\.[a-z0-9.-]+", raw)
        name = found.group(0).decode() if found else "release"
        obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "resourceVersion": "1"}}
        with self.lock:
            self.store[path if path.endswith(f"/{name}") else f"{path}/{name}"] = obj
        return 201, obj


def is_collection(path: str) -> bool:
    """Whether `path` names a collection (…/<plural>) of a resource the fake server knows."""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return any(last == plural for res in RESOURCES.values() for plural, _, _ in res)


def status(code: int, reason: str, message: str) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


# --- Helm through helm-sdkpy ----------------------------------------------------------------------


def chart_with_values(values: dict, into: Path) -> Path:
    """A copy of the chart whose values.yaml has `values` merged in (Lint takes no values)."""
    dest = into / "blaxel-operator"
    shutil.copytree(CHART, dest)
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    (dest / "values.yaml").write_text(yaml.safe_dump(deep_merge(defaults, values)))
    return dest


def helm_lint(values: dict) -> list[str]:
    """Helm's lint findings of severity WARNING or ERROR (INFO, like "icon is recommended", is dropped).

    helm-sdkpy returns Helm's lint result as JSON, where the Go error text does not survive (`Err: {}`):
    only the severity and the file are known. Run `helm lint` on the chart to read the message."""
    import helm_sdkpy

    with tempfile.TemporaryDirectory() as tmp:
        chart = chart_with_values(values, Path(tmp))
        config = helm_sdkpy.Configuration(namespace=NAMESPACE)
        result = asyncio.run(helm_sdkpy.Lint(config).run(str(chart)))
    severities = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}
    findings = [
        f"{severities.get(m.get('Severity'), m.get('Severity'))} in {m.get('Path')}"
        for m in result.get("Messages") or []
        if m.get("Severity") != 1
    ]
    if result.get("TotalChartsLinted") != 1:
        findings.append(f"expected 1 chart linted: {json.dumps(result)}")
    if result.get("Errors") and not findings:
        findings.append(f"lint errors: {json.dumps(result['Errors'])}")
    return findings


def helm_render(values: dict, chart: Path = CHART, skip_crds: bool = False) -> list[dict]:
    """The objects a real `helm install` of `chart` sends to the (fake) cluster, in order. With
    `skip_crds`, as `helm install --skip-crds`: the CRDs Helm sends from crds/ (those without the
    release's ownership annotation) are accepted and forgotten, as if never sent."""
    import helm_sdkpy

    server = FakeApiServer(skip_crds=skip_crds)
    try:
        config = helm_sdkpy.Configuration(namespace=NAMESPACE, kubeconfig=server.kubeconfig())
        asyncio.run(
            helm_sdkpy.Install(config).run(RELEASE, str(chart), values=values or None, wait=False, timeout=60)
        )
        return list(server.created)
    finally:
        server.close()


# --- checks ---------------------------------------------------------------------------------------


def validate_schema(obj: dict, where: str, version: str, skipped: set[str]) -> None:
    import kubernetes_validate

    kind = obj.get("kind", "?")
    if kind in CRD_KINDS:
        skipped.add(kind)
        return
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        path = "/".join(str(p) for p in e.path)
        fail(where, f"{kind}/{obj['metadata'].get('name')}: schema: {e.message} at {path}")
    except kubernetes_validate.SchemaNotFoundError:
        fail(where, f"{kind} ({obj.get('apiVersion')}): no Kubernetes schema (add it to CRD_KINDS?)")


def check_security(objs: list[dict], where: str) -> None:
    """Non-root, read-only root filesystem, no privilege escalation, no capabilities, RuntimeDefault
    seccomp, probes on the metrics port, POD_NAME/POD_NAMESPACE from the downward API."""
    deployments = [o for o in objs if o["kind"] == "Deployment"]
    if len(deployments) != 1:
        fail(where, f"expected one Deployment, found {len(deployments)}")
        return
    pod = deployments[0]["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    for c in pod["containers"] + pod.get("initContainers", []):
        sc = c.get("securityContext", {})
        name = f"container {c['name']}"

        def eff(key, sc=sc):  # the container's setting, else the pod's
            return sc.get(key, psc.get(key))

        if eff("runAsNonRoot") is not True:
            fail(where, f"{name}: runAsNonRoot is not true")
        if (eff("runAsUser") or 0) == 0:
            fail(where, f"{name}: runAsUser is root or unset")
        if sc.get("readOnlyRootFilesystem") is not True:
            fail(where, f"{name}: readOnlyRootFilesystem is not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            fail(where, f"{name}: allowPrivilegeEscalation is not false")
        if sc.get("privileged"):
            fail(where, f"{name}: privileged")
        if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc.get("capabilities", {}).get("add"):
            fail(where, f"{name}: capabilities must drop ALL and add none")
        if (eff("seccompProfile") or {}).get("type") != "RuntimeDefault":
            fail(where, f"{name}: seccompProfile is not RuntimeDefault")
        if not c.get("resources", {}).get("limits") or not c.get("resources", {}).get("requests"):
            fail(where, f"{name}: resources requests and limits are required")
        env = {e["name"]: e for e in c.get("env", [])}
        for var, field in (("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")):
            got = env.get(var, {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            if got != field:
                fail(where, f"{name}: {var} must come from the downward API ({field})")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            http = c.get(probe, {}).get("httpGet", {})
            if http.get("path") != path or http.get("port") != "metrics":
                fail(where, f"{name}: {probe} must GET {path} on port 'metrics'")
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        fail(where, "the pod must not share host namespaces")
    if any(v.get("hostPath") for v in pod.get("volumes", [])):
        fail(where, "the pod must not mount hostPath volumes")


# The alerts the PrometheusRule must carry, each with a runbook section of docs/runbook.md.
ALERTS = {
    "BlaxelOperatorObjectsStalled": "stalled-objects",
    "BlaxelOperatorRemoteErrors": "remote-errors",
    "BlaxelOperatorRateLimited": "rate-limited",
    "BlaxelOperatorNoLeader": "no-leader",
}


def check_alerts(rule: dict, where: str) -> None:
    """The PrometheusRule has exactly ALERTS, each with a runbook_url to its section of docs/runbook.md
    (which must exist), and expressions naming only metrics the README's metrics table documents."""
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    if set(alerts) != set(ALERTS):
        fail(where, f"PrometheusRule alerts {sorted(alerts)} differ from {sorted(ALERTS)}")
    runbook = (REPO / "docs" / "runbook.md").read_text()
    documented = set(re.findall(r"`(blaxel_operator_[a-z_]+)`", (REPO / "README.md").read_text()))
    for name, section in ALERTS.items():
        alert = alerts.get(name)
        if alert is None:
            continue
        if not alert["annotations"].get("runbook_url", "").endswith(f"#{section}"):
            fail(where, f"{name}: runbook_url does not point at #{section}")
        if f'<a id="{section}"></a>' not in runbook:
            fail(where, f"docs/runbook.md has no section {section} for {name}")
        for metric in re.findall(r"blaxel_operator_[a-z_]+", alert["expr"]):
            if metric not in documented:
                fail(where, f"{name}: {metric} is not in the README's metrics table")


def rules_of(role: dict) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role.get("rules", []):
        if rule.get("resourceNames") or rule.get("nonResourceURLs"):
            out[("?", "resourceNames/nonResourceURLs")] = set()
        for group in rule.get("apiGroups", []):
            for res in rule.get("resources", []):
                out.setdefault((group, res), set()).update(rule.get("verbs", []))
    return out


def check_rbac(
    objs: list[dict],
    where: str,
    leader_election: bool,
    namespace: str,
    watch_namespace: str = "",
    preview_tokens: bool = True,
) -> None:
    """RBAC names exactly the resources and verbs the operator uses: no wildcards, no extra rights,
    Leases only through a Role in the operator's namespace. With a watched namespace, the operator's
    rules are a Role in that namespace and nothing is cluster-wide."""
    for o in objs:
        if o["kind"] in ("ClusterRole", "Role"):
            for rule in o.get("rules", []):
                for field in ("apiGroups", "resources", "verbs"):
                    if "*" in rule.get(field, []):
                        fail(where, f"{o['kind']}/{o['metadata']['name']}: wildcard in {field}")
    cluster_roles = [o for o in objs if o["kind"] == "ClusterRole"]
    own_rules = own_namespace_rules(leader_election)
    own_roles = [o for o in objs if o["kind"] == "Role" and rules_of(o) == own_rules]
    other_roles = [o for o in objs if o["kind"] == "Role" and rules_of(o) != own_rules]
    if watch_namespace:
        operator_roles = other_roles
        if cluster_roles or any(o["kind"] == "ClusterRoleBinding" for o in objs):
            fail(where, "with watchNamespace nothing may be cluster-wide (ClusterRole or ClusterRoleBinding)")
        for role in other_roles:
            if role["metadata"].get("namespace") != watch_namespace:
                fail(where, f"Role/{role['metadata']['name']} is not in the watched namespace")
    else:
        operator_roles = cluster_roles
        if other_roles:
            fail(where, f"unexpected Roles: {[r['metadata']['name'] for r in other_roles]}")
    if len(operator_roles) != 1:
        fail(where, f"expected one operator (Cluster)Role, found {len(operator_roles)}")
    else:
        got = rules_of(operator_roles[0])
        # Without preview tokens the operator writes no Secret: get only.
        needed = CLUSTER_RULES if preview_tokens else {**CLUSTER_RULES, ("", "secrets"): {"get"}}
        if got != needed:
            fail(where, f"operator role rules differ from the needed ones: {sorted(got.items())}")
    # One Role in the operator's own namespace: the removal record, plus the Lease only with leader
    # election (a Lease right without it would be more than the operator uses).
    if len(own_roles) != 1:
        fail(where, f"expected one Role in the operator's namespace with {sorted(own_rules)}, found {len(own_roles)}")
    elif own_roles[0]["metadata"].get("namespace") != namespace:
        fail(where, "the operator's own Role must be in the operator's namespace")
    # Each binding points at a rendered role and at the operator's ServiceAccount.
    sa_names = {o["metadata"]["name"] for o in objs if o["kind"] == "ServiceAccount"}
    for b in (o for o in objs if o["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        ref = b["roleRef"]
        if not any(
            r["kind"] == ref["kind"]
            and r["metadata"]["name"] == ref["name"]
            and r["metadata"].get("namespace") == b["metadata"].get("namespace")
            for r in objs
        ):
            fail(where, f"{b['kind']}/{b['metadata']['name']} refers to a missing {ref['kind']}")
        for s in b.get("subjects", []):
            if s.get("kind") != "ServiceAccount" or s.get("name") not in sa_names:
                fail(where, f"{b['kind']}/{b['metadata']['name']}: subject {s} is not our ServiceAccount")
            elif s.get("namespace") != namespace:
                fail(where, f"{b['kind']}/{b['metadata']['name']}: subject in the wrong namespace")


def env_of(objs: list[dict]) -> dict[str, dict]:
    dep = next(o for o in objs if o["kind"] == "Deployment")
    return {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0].get("env", [])}


def null_paths(value, path: str = "") -> list[str]:
    """Where a template left an empty key (`annotations:` with nothing under it renders as null)."""
    if value is None:
        return [path or "/"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in null_paths(v, f"{path}/{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in null_paths(v, f"{path}/{i}")]
    return []


def check_render(name: str, values: dict, objs: list[dict], version: str, skipped: set[str]) -> None:
    where = f"helm[{name}]"
    merged = deep_merge(yaml.safe_load((CHART / "values.yaml").read_text()), values)
    chart_objs = [o for o in objs if o.get("kind") != "CustomResourceDefinition"]
    for o in objs:
        validate_schema(o, where, version, skipped)
        for path in null_paths(o):
            fail(
                where,
                f"{o.get('kind')}/{o['metadata'].get('name')}: null at {path} (an empty block in a template)",
            )
    if not any(o.get("kind") == "Deployment" for o in chart_objs):
        fail(where, "no Deployment rendered")
        return
    check_security(chart_objs, where)
    check_rbac(
        chart_objs,
        where,
        merged["leaderElection"]["enabled"],
        NAMESPACE,
        merged["watchNamespace"],
        merged["previewTokens"]["enabled"],
    )
    env = env_of(chart_objs)
    kinds = {o["kind"] for o in chart_objs}
    # The value set's intent is visible in what was rendered.
    expect = {
        "NetworkPolicy": merged["networkPolicy"]["enabled"],
        "ServiceMonitor": merged["metrics"]["serviceMonitor"]["enabled"],
        "PrometheusRule": merged["metrics"]["prometheusRule"]["enabled"],
        "Secret": merged["credentials"]["create"],
        "PodDisruptionBudget": merged["podDisruptionBudget"]["enabled"] and merged["replicaCount"] > 1,
    }
    for kind, wanted in expect.items():
        if (kind in kinds) != wanted:
            fail(where, f"{kind} rendered={kind in kinds}, expected {wanted}")
    for rule in (o for o in chart_objs if o["kind"] == "PrometheusRule"):
        check_alerts(rule, where)
    dep = next(o for o in chart_objs if o["kind"] == "Deployment")
    if dep["spec"]["replicas"] != merged["replicaCount"]:
        fail(where, "replicas do not follow replicaCount")
    if env.get("BLAXEL_LEADER_ELECTION", {}).get("value") != str(merged["leaderElection"]["enabled"]).lower():
        fail(where, "BLAXEL_LEADER_ELECTION does not follow leaderElection.enabled")
    strategy = dep["spec"].get("strategy", {}).get("type", "RollingUpdate")
    if not merged["leaderElection"]["enabled"] and strategy != "Recreate":
        fail(
            where,
            "without leader election the Deployment must use the Recreate strategy (no two active replicas)",
        )
    if (
        merged["watchNamespace"]
        and env.get("BLAXEL_WATCH_NAMESPACE", {}).get("value") != merged["watchNamespace"]
    ):
        fail(where, "BLAXEL_WATCH_NAMESPACE does not follow watchNamespace")
    key = env.get("BL_API_KEY", {}).get("valueFrom", {}).get("secretKeyRef", {})
    if not key:
        fail(where, "BL_API_KEY must come from a Secret")
    if merged["credentials"]["create"]:
        secret = next((o for o in chart_objs if o["kind"] == "Secret"), {})
        if secret.get("metadata", {}).get("name") != key.get("name"):
            fail(where, "BL_API_KEY does not refer to the created Secret")
    crds = [o for o in objs if o.get("kind") == "CustomResourceDefinition"]
    if len(crds) != len(KINDS):
        fail(where, f"expected the {len(KINDS)} CRDs (crds/ or the templated copy) to be installed, got {len(crds)}")
    templated = merged["crds"]["templated"]
    for crd in crds:
        keep = crd["metadata"].get("annotations", {}).get("helm.sh/resource-policy") == "keep"
        if keep != templated:
            fail(where, f"CRD {crd['metadata']['name']}: resource-policy keep is {keep}, templated is {templated}")
    if templated:
        generated = {
            d["metadata"]["name"]: d for d in yaml.safe_load_all((REPO / "crds" / "blaxel.ai.yaml").read_text()) if d
        }
        for got in crds:
            want = generated.get(got["metadata"]["name"], {})
            if want.get("spec") != got["spec"]:
                fail(where, f"templated CRD {got['metadata']['name']} differs from crds/blaxel.ai.yaml")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    pod = dep["spec"]["template"]["spec"]
    image = container["image"]
    want_image = f"{merged['image']['repository']}:{merged['image']['tag'] or chart_app_version()}"
    if merged["image"]["digest"]:
        want_image += "@" + merged["image"]["digest"]
    if image != want_image:
        fail(where, f"image {image}, expected {want_image}")
    if container["args"] != ["run", *merged["extraArgs"]]:
        fail(where, f"args {container['args']} do not follow extraArgs")
    if env.get("RUST_LOG", {}).get("value") != (merged["logLevel"] or None):
        fail(where, "RUST_LOG does not follow logLevel")
    if env.get("BL_API_URL", {}).get("value") != merged["apiUrl"]:
        fail(where, "BL_API_URL does not follow apiUrl")
    for key, got in (
        ("extraVolumes", pod.get("volumes", [])),
        ("extraVolumeMounts", container.get("volumeMounts", [])),
        ("topologySpreadConstraints", pod.get("topologySpreadConstraints", [])),
    ):
        if got != merged[key]:
            fail(where, f"{key} not rendered as given: {got}")


def chart_app_version() -> str:
    return str(yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])


def check_subchart(version: str, skipped: set[str]) -> None:
    """The chart as the dependency of a tiny parent chart that sets `global` values (Helm passes them
    to every subchart, so the subchart's values.schema.json must accept `global`) and the subchart's
    own values under its name: it lints, installs and passes the same checks."""
    import helm_sdkpy

    sub_values = {"defaultCredentialsNamespaces": ["team-a"], "logLevel": "debug"}
    with tempfile.TemporaryDirectory() as tmp:
        parent = Path(tmp) / "platform"
        shutil.copytree(CHART, parent / "charts" / CHART.name)
        chart_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
        (parent / "Chart.yaml").write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v2",
                    "name": "platform",
                    "version": "1.0.0",
                    "dependencies": [{"name": CHART.name, "version": chart_version}],
                }
            )
        )
        (parent / "values.yaml").write_text(
            yaml.safe_dump(
                {"global": {"imageRegistry": "registry.example.org", "team": "platform"}, CHART.name: sub_values}
            )
        )
        config = helm_sdkpy.Configuration(namespace=NAMESPACE)
        result = asyncio.run(helm_sdkpy.Lint(config).run(str(parent)))
        if result.get("Errors"):
            fail("subchart", f"lint errors: {json.dumps(result['Errors'])}")
        objs = helm_render({}, chart=parent)
    print(f"  rendered {len(objs)} objects as a subchart")
    check_render("subchart", sub_values, objs, version, skipped)
    env = env_of([o for o in objs if o.get("kind") == "Deployment"])
    if env.get("BLAXEL_DEFAULT_CREDENTIALS_NAMESPACES", {}).get("value") != "team-a":
        fail("subchart", "the parent's values for the subchart were not applied")


CHART_README = CHART / "README.md"
TABLE_START = "<!-- values-table:start (generated: scripts/check-deploy --write-chart-readme) -->"
TABLE_END = "<!-- values-table:end -->"


def documented_values() -> list[tuple[str, str]]:
    """(dotted key, description) for every key of values.yaml under a `# --` comment (helm-docs'
    convention: the comment, continued by the `#` lines after it, documents the key below it)."""
    rows: list[tuple[str, str]] = []
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in (CHART / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if not stripped:
            pending = None
            continue
        if stripped.startswith("# --"):
            pending = [stripped[len("# --") :].strip()]
            continue
        if stripped.startswith("#"):
            if pending is not None:
                pending.append(stripped.lstrip("#").strip())
            continue
        found = re.match(r"^( *)([A-Za-z0-9_]+):", line)
        if not found:
            continue  # list items and continuation lines
        indent, key = len(found.group(1)), found.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [key])
        if pending:
            rows.append((path, " ".join(pending)))
        pending = None
        stack.append((indent, key))
    return rows


def value_leaves(value, path: str = "") -> list[str]:
    """Dotted keys of values.yaml's leaves: scalars, lists and empty maps."""
    if isinstance(value, dict) and value:
        return [leaf for k, v in value.items() for leaf in value_leaves(v, f"{path}.{k}" if path else k)]
    return [path]


def values_table() -> tuple[str, list[str]]:
    """The chart README's values table, and the values it leaves undocumented."""
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    rows = documented_values()
    documented = {p for p, _ in rows}
    missing = [
        leaf
        for leaf in value_leaves(defaults)
        if not any(leaf == d or leaf.startswith(d + ".") for d in documented)
    ]

    def at(path: str):
        value = defaults
        for part in path.split("."):
            value = value[part]
        return value

    def type_of(value) -> str:
        return {bool: "bool", int: "int", float: "number", str: "string", list: "list", dict: "object"}.get(
            type(value), "?"
        )

    lines = ["| value | type | default | description |", "| --- | --- | --- | --- |"]
    for path, description in rows:
        value = at(path)
        default = json.dumps(value, separators=(", ", ": ")).replace("|", "\\|")
        text = description.replace("|", "\\|")
        lines.append(f"| `{path}` | {type_of(value)} | `{default}` | {text} |")
    return "\n".join(lines) + "\n", missing


def check_chart_readme(write: bool = False) -> None:
    """The chart README's values table is the generated one, and every value is documented."""
    where = "deploy/helm/blaxel-operator/README.md"
    table, missing = values_table()
    for leaf in missing:
        fail("values.yaml", f"`{leaf}` has no `# --` description (on it or a parent)")
    text = CHART_README.read_text()
    try:
        head, rest = text.split(TABLE_START + "\n", 1)
        current, tail = rest.split(TABLE_END, 1)
    except ValueError:
        fail(where, f"no values table between {TABLE_START!r} and {TABLE_END!r}")
        return
    if write:
        CHART_README.write_text(head + TABLE_START + "\n" + table + TABLE_END + tail)
        print(f"  wrote the values table ({table.count(chr(10)) - 2} values)")
    elif current != table:
        fail(where, "the values table is stale: run scripts/check-deploy --write-chart-readme")
    else:
        print(f"  values table: {table.count(chr(10)) - 2} values, all documented")


def check_plain_manifests(version: str, skipped: set[str]) -> None:
    """deploy/*.yaml: schema-valid, secure, least-privilege, and all listed in kustomization.yaml."""
    where = "deploy/"
    files = sorted(p.name for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml")
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    if sorted(kustomization.get("resources", [])) != files:
        fail(where, f"kustomization.yaml resources {kustomization.get('resources')} != files {files}")
    objs = []
    for f in files:
        for doc in yaml.safe_load_all((DEPLOY / f).read_text()):
            if doc:
                validate_schema(doc, f"deploy/{f}", version, skipped)
                objs.append(doc)
    ns = [o for o in objs if o["kind"] == "Namespace"]
    namespace = ns[0]["metadata"]["name"] if ns else NAMESPACE
    for o in objs:
        cluster_scoped = o["kind"] in ("Namespace", "ClusterRole", "ClusterRoleBinding")
        if not cluster_scoped and o["metadata"].get("namespace") != namespace:
            fail(where, f"{o['kind']}/{o['metadata']['name']} is not in namespace {namespace}")
    check_security(objs, where)
    check_rbac(objs, where, True, namespace)
    env = env_of(objs)
    key = env.get("BL_API_KEY", {}).get("valueFrom", {}).get("secretKeyRef", {})
    if key != {"name": "blaxel-operator-credentials", "key": "apiKey", "optional": True}:
        fail(
            where, f"BL_API_KEY must come from the optional Secret blaxel-operator-credentials/apiKey: {key}"
        )
    # The CRDs are installed separately, never by the operator's manifests.
    if any(o["kind"] == "CustomResourceDefinition" for o in objs):
        fail(where, "CRDs must not be part of deploy/ (they are installed separately from crds/)")
    print(f"  deploy/: {len(objs)} objects in {len(files)} files")


def check_crd_files(version: str, skipped: set[str]) -> None:
    for path in (REPO / "crds" / "blaxel.ai.yaml", CHART / "crds" / "blaxel.ai.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                validate_schema(doc, str(path.relative_to(REPO)), version, skipped)
    if (REPO / "crds" / "blaxel.ai.yaml").read_bytes() != (CHART / "crds" / "blaxel.ai.yaml").read_bytes():
        fail(
            "chart crds/",
            "differs from crds/blaxel.ai.yaml: cp crds/blaxel.ai.yaml deploy/helm/blaxel-operator/crds/",
        )


def cond(type_: str, status_: str, reason: str = "R", message: str = "") -> dict:
    return {"type": type_, "status": status_, "reason": reason, "message": message}


def obj_with(conditions: list | None, generation: int = 2, observed: int = 2, annotations=None) -> dict:
    obj: dict = {"metadata": {"name": "x", "generation": generation}}
    if annotations:
        obj["metadata"]["annotations"] = annotations
    if conditions is not None:
        obj["status"] = {"observedGeneration": observed, "conditions": conditions}
    return obj


# (case, object, expected Argo CD health status)
ARGO_CASES = [
    ("no status yet", obj_with(None), "Progressing"),
    ("status for an older generation", obj_with([cond("Ready", "True")], observed=1), "Progressing"),
    (
        "ready",
        obj_with([cond("Ready", "True"), cond("Reconciling", "False"), cond("Stalled", "False")]),
        "Healthy",
    ),
    (
        "invitation pending",
        obj_with(
            [
                cond("Ready", "False", "InvitationPending"),
                cond("Reconciling", "True"),
                cond("Stalled", "False"),
            ]
        ),
        "Progressing",
    ),
    (
        "duplicate member",
        obj_with(
            [
                cond("Ready", "False", "DuplicateMember"),
                cond("Stalled", "True", "DuplicateMember", "older wins"),
            ]
        ),
        "Degraded",
    ),
    (
        "stalled wins over reconciling",
        obj_with(
            [
                cond("Ready", "False", "InvalidCredentials"),
                cond("Reconciling", "True"),
                cond("Stalled", "True"),
            ]
        ),
        "Degraded",
    ),
    (
        "failed sandbox",
        obj_with([cond("Ready", "False", "Failed", "image pull"), cond("Reconciling", "False")]),
        "Degraded",
    ),
    ("paused", obj_with([cond("Ready", "True")], annotations={"blaxel.ai/paused": "true"}), "Suspended"),
    ("no Ready condition yet", obj_with([cond("Synced", "True")]), "Progressing"),
]


def check_argocd() -> None:
    """deploy/argocd/health-check.lua gives the expected health for each case (run by Lua 5.1, the
    language Argo CD's gopher-lua implements), and argocd-cm-patch.yaml embeds it verbatim."""
    import lupa.lua51 as lua

    where = "deploy/argocd"
    script = (DEPLOY / "argocd" / "health-check.lua").read_text()
    patch = yaml.safe_load((DEPLOY / "argocd" / "argocd-cm-patch.yaml").read_text())
    for _, kind in KINDS:
        if patch["data"].get(f"resource.customizations.health.blaxel.ai_{kind}") != script:
            fail(where, f"argocd-cm-patch.yaml: the {kind} health script differs from health-check.lua")
    for case, obj, expected in ARGO_CASES:
        runtime = lua.LuaRuntime()
        runtime.globals().obj = runtime.table_from(obj, recursive=True)
        try:
            hs = runtime.execute(script)
            got, message = hs["status"], hs["message"]
        except Exception as e:  # a Lua error is what Argo CD would show as Unknown
            fail(where, f"{case}: the script failed: {e}")
            continue
        if got != expected:
            fail(where, f"{case}: health {got} ({message}), expected {expected}")
    print(f"  health-check.lua: {len(ARGO_CASES)} cases")


IMAGE_REPOSITORY = "ghcr.io/blaxel-operator/blaxel-operator"
WORKFLOWS = REPO / ".github" / "workflows"


def check_image_and_ci() -> None:
    """The Dockerfile passes hadolint and keeps its invariants (locked release build with selectable
    features, base images pinned by digest, distroless non-root runtime, `run` by default); every
    workflow matches the GitHub workflow schema; the release workflow pins its actions by commit,
    builds both platforms with the otel feature, signs, and publishes the image that the chart and
    deploy/ name, at the version Cargo.toml and the chart carry."""
    import subprocess

    bin_dir = Path(sys.executable).parent
    dockerfile = REPO / "Dockerfile"
    text = dockerfile.read_text()
    for needle in (
        "cargo build --release --locked",
        '${CARGO_FEATURES:+--features "$CARGO_FEATURES"}',
        "USER 65532",
        'ENTRYPOINT ["/blaxel-operator"]',
        'CMD ["run"]',
    ):
        if needle not in text:
            fail("Dockerfile", f"missing {needle!r}")
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    for pattern in (
        r"rust:1-bookworm@sha256:[0-9a-f]{64}$",
        r"gcr.io/distroless/cc-debian12:nonroot@sha256:[0-9a-f]{64}$",
    ):
        if not any(re.match(pattern, f) for f in froms):
            fail("Dockerfile", f"no base image matching {pattern} (pinned by digest)")
    workflows = sorted(WORKFLOWS.glob("*.yml"))
    checks = [("Dockerfile: hadolint", [str(bin_dir / "hadolint"), str(dockerfile)])]
    checks += [
        (
            f".github/workflows/{w.name}: schema",
            [str(bin_dir / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(w)],
        )
        for w in workflows
    ]
    for what, cmd in checks:
        run = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            fail(what, (run.stdout + run.stderr).strip())
        else:
            print(f"  {what}: ok")
    check_release_workflow()
    check_ci_waits_for_every_crd()


def check_ci_waits_for_every_crd() -> None:
    """The CI workflow waits for every CRD of crds/ to be Established before its tests (a new kind
    forgotten there makes the tests race the API server)."""
    where = ".github/workflows/ci.yml"
    text = (WORKFLOWS / "ci.yml").read_text()
    for plural, kind in KINDS:
        if f"crd/{plural}.blaxel.ai" not in text:
            fail(where, f"no `kubectl wait` for crd/{plural}.blaxel.ai ({kind})")


def check_release_workflow() -> None:
    where = ".github/workflows/release.yml"
    path = WORKFLOWS / "release.yml"
    if not path.exists():
        fail(where, "missing")
        return
    text = path.read_text()
    workflow = yaml.safe_load(text)
    # PyYAML reads the key `on` as True.
    trigger = workflow.get("on", workflow.get(True, {}))
    if trigger != {"push": {"tags": ["v*"]}}:
        fail(where, f"must run on v* tags only, runs on {trigger}")
    for line in text.splitlines():
        found = re.match(r"^\s*-?\s*uses:\s*(\S+)(.*)$", line)
        if found and not re.match(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$", found.group(1)):
            fail(where, f"action not pinned by full commit SHA: {found.group(1)}")
        elif found and not re.match(r"^\s*# v\d", found.group(2)):
            fail(where, f"pinned action without its release in a comment: {line.strip()}")
    steps = [s for job in workflow["jobs"].values() for s in job.get("steps", [])]
    build = next((s for s in steps if str(s.get("uses", "")).startswith("docker/build-push-action@")), None)
    if not build:
        fail(where, "no docker/build-push-action step")
    else:
        w = build.get("with", {})
        for key, want in (
            ("platforms", "linux/amd64,linux/arm64"),
            ("build-args", "CARGO_FEATURES=otel"),
            ("push", True),
            ("sbom", True),
        ):
            if w.get(key) != want:
                fail(where, f"build-push-action {key} is {w.get(key)!r}, expected {want!r}")
        if not str(w.get("provenance", "")).startswith("mode="):
            fail(where, "build-push-action must attach provenance")
    for needle in (
        'cosign sign --yes "$IMAGE@$DIGEST"',
        "helm push",
        "gh release create",
        "dist/crds.yaml dist/install.yaml",
        'echo "image=$REGISTRY/$owner/blaxel-operator"',
        f"- name: {IMAGE_REPOSITORY}",
    ):
        if needle not in text:
            fail(where, f"missing {needle!r}")
    # The image the release publishes is the one users install: chart, deploy/, README.
    owner = IMAGE_REPOSITORY.split("/")[1]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    if values["image"]["repository"] != IMAGE_REPOSITORY:
        fail("values.yaml", f"image.repository is not {IMAGE_REPOSITORY}")
    cargo_version = re.search(r'^version = "([^"]+)"', (REPO / "Cargo.toml").read_text(), re.M).group(1)
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    if (str(chart["version"]), str(chart["appVersion"])) != (cargo_version, cargo_version):
        fail("Chart.yaml", f"version/appVersion {chart['version']}/{chart['appVersion']} != Cargo.toml {cargo_version}")
    deployment = yaml.safe_load((DEPLOY / "deployment.yaml").read_text())
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    if image != f"{IMAGE_REPOSITORY}:{cargo_version}":
        fail("deploy/deployment.yaml", f"image {image}, expected {IMAGE_REPOSITORY}:{cargo_version}")
    if f"{IMAGE_REPOSITORY}:{cargo_version}" not in (CHART / "Chart.yaml").read_text():
        fail("Chart.yaml", "the artifacthub.io/images annotation does not name the released image")
    readme = (REPO / "README.md").read_text()
    if IMAGE_REPOSITORY not in readme or f"oci://ghcr.io/{owner}/charts/blaxel-operator" not in readme:
        fail("README.md", "the install section does not name the published image and chart")
    print(f"  {where}: v* tags, actions pinned, publishes {IMAGE_REPOSITORY}:{cargo_version}")


def main() -> int:
    import functools

    if sys.argv[1:] == ["--write-chart-readme"]:
        check_chart_readme(write=True)
        return 1 if failures else 0

    import helm_sdkpy
    import kubernetes_validate.utils as kv

    # kubernetes-validate reads and parses its schema files (several MB) on every call: read each once.
    kv.schema_contents = functools.lru_cache(maxsize=None)(kv.schema_contents)

    os.environ["HELM_DRIVER"] = "memory"
    # Helm's caches and config stay out of the user's home.
    scratch = tempfile.mkdtemp(prefix="check-deploy-")
    for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        os.environ[var] = os.path.join(scratch, var.lower())
    version = kv.latest_version()
    print(
        f"helm-sdkpy {helm_sdkpy.__version__} ({helm_sdkpy.get_version()}), "
        f"kubernetes-validate schemas v{version} (strict)"
    )
    skipped: set[str] = set()

    def stage(title: str, check, *args) -> None:
        """Runs one check; an exception (unparsable YAML, a Helm error) is a failure, and the other
        checks still run."""
        print(f"==> {title}")
        try:
            check(*args)
        except Exception as e:
            fail(title, f"{type(e).__name__}: {e}")

    rendered_env: dict[str, list] = {}

    def value_set(name: str, values: dict) -> None:
        for message in helm_lint(values):
            fail(f"lint[{name}]", message)
        objs = helm_render(values, skip_crds=name in SKIP_CRDS)
        print(f"  rendered {len(objs)} objects: {', '.join(sorted({o['kind'] for o in objs}))}")
        check_render(name, values, objs, version, skipped)
        env = env_of([o for o in objs if o.get("kind") == "Deployment"])
        rendered_env[name] = [[k, e.get("value")] for k, e in env.items()]

    def refused(name: str, values: dict, expected: str) -> None:
        try:
            helm_render(values)
        except Exception as e:
            if expected not in str(e):
                fail(f"helm[{name}]", f"refused with an unexpected message: {e}")
            return
        fail(f"helm[{name}]", "rendered, but must be refused")

    try:
        stage("chart crds/ and crds/blaxel.ai.yaml", check_crd_files, version, skipped)
        stage("deploy/*.yaml", check_plain_manifests, version, skipped)
        stage("deploy/argocd: Argo CD health script", check_argocd)
        stage("chart README: the values table", check_chart_readme)
        stage("Dockerfile and CI workflow", check_image_and_ci)
        for name, values in VALUE_SETS.items():
            stage(
                f"chart, values '{name}': lint, install into a fake API server, validate",
                value_set,
                name,
                values,
            )
        stage("chart as a subchart with global values", check_subchart, version, skipped)
        for name, (values, expected) in MUST_FAIL.items():
            stage(f"chart, values '{name}' must be refused", refused, name, values, expected)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    # tests/deploy.rs checks that every variable is a flag of `blaxel-operator run` and parses.
    if os.environ.get("CHECK_DEPLOY_ENV_OUT"):
        Path(os.environ["CHECK_DEPLOY_ENV_OUT"]).write_text(json.dumps(rendered_env, indent=1))
    if skipped:
        print(f"note: not schema-validated (CRD-backed, no Kubernetes schema): {', '.join(sorted(skipped))}")
    if failures:
        print(f"check-deploy: {len(failures)} problem(s)")
        return 1
    print("check-deploy: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
