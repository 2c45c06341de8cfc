"""Renders the example inventories with the prompt_service role (render mode, no cluster, no
vault) and checks the manifests: Kubernetes schemas (kubernetes-validate --strict), the
policies the platform relies on, and the monitoring objects against the service's metrics.

ServiceMonitor and PrometheusRule are CRDs that upstream schemas do not cover: they are
checked structurally here instead.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_runs import ROOT, ansible_playbook

INVENTORIES = ["all-in-one", "ha"]
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
METRICS_SOURCE = ROOT / "service" / "app" / "core" / "metrics.py"
ROLE_DEFAULTS = yaml.safe_load((ROOT / "roles" / "prompt_service" / "defaults" / "main.yml").read_text())
ROLE_VARS = yaml.safe_load((ROOT / "roles" / "prompt_service" / "vars" / "main.yml").read_text())


def pinned_kubernetes() -> str:
    """Kubernetes version of the RKE2 release the rke2 role pins (v1.33.5+rke2r1 -> 1.33.5)."""
    pin = yaml.safe_load((ROOT / "roles" / "rke2" / "defaults" / "main.yml").read_text())["rke2_version"]
    match = re.fullmatch(r"v(\d+\.\d+\.\d+)\+rke2r\d+", pin)
    assert match, pin
    return match.group(1)


def newest_schema_version() -> str:
    from kubernetes_validate.utils import latest_version

    return str(latest_version())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The command of the role README, as a GitOps user runs it: the real site.yml, no vault,
    no host and no cluster reachable."""
    base = tmp_path_factory.mktemp("prompt_service")
    out = {}
    for inventory in INVENTORIES:
        target = base / inventory
        result = ansible_playbook(
            "-i",
            str(ROOT / "inventory" / inventory),
            str(ROOT / "site.yml"),
            "--tags",
            "prompt_service",
            "-e",
            "prompt_service_deploy_mode=render",
            "-e",
            f"prompt_service_render_dir={target}",
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        out[inventory] = target
    return out


def documents(directory: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(directory.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path.name, doc


def pod_specs(directory: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for _, doc in documents(directory):
        kind = doc["kind"]
        if kind in {"Deployment", "StatefulSet"}:
            yield f"{kind}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]
        elif kind == "CronJob":
            yield f"{kind}/{doc['metadata']['name']}", doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_render_tree_has_shared_and_one_file_per_service(rendered: dict[str, Path], inventory: str) -> None:
    class InventoryLoader(yaml.SafeLoader):
        """Reads Ansible's !unsafe strings as plain strings."""

    def unsafe(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        assert isinstance(node, yaml.ScalarNode)
        return loader.construct_scalar(node)

    InventoryLoader.add_constructor("!unsafe", unsafe)
    path = ROOT / "inventory" / inventory / "group_vars" / "all" / "prompt_services.yml"
    config = yaml.load(path.read_text(), Loader=InventoryLoader)
    names = [entry["name"] for entry in config["prompt_services"]]
    files = sorted(p.name for p in rendered[inventory].iterdir())
    expected = ["SECRETS.md", "monitoring.yaml", *(f"service-{n}.yaml" for n in names), "shared.yaml"]
    assert files == sorted(expected)


@pytest.mark.parametrize("version", ["pinned", "newest"])
@pytest.mark.parametrize("inventory", INVENTORIES)
def test_manifests_pass_kubernetes_validate_strict(rendered: dict[str, Path], inventory: str, version: str) -> None:
    version = pinned_kubernetes() if version == "pinned" else newest_schema_version()
    files = sorted(str(p) for p in rendered[inventory].glob("*.yaml"))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "kubernetes-validate"), "--strict", "-k", version, *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
    # A kind without a schema is only a warning to kubernetes-validate: allow it for the CRDs only,
    # and require a pass line for every other object.
    warnings = [line for line in result.stdout.splitlines() if line.startswith("WARN")]
    assert [w for w in warnings if not re.search(r"kind (ServiceMonitor|PrometheusRule) ", w)] == []
    objects = [doc for _, doc in documents(rendered[inventory]) if doc["kind"] not in CRD_KINDS]
    passed = [line for line in result.stdout.splitlines() if line.startswith("INFO") and " passed " in line]
    assert len(passed) == len(objects)


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_pods_meet_the_restricted_pod_security_standard(rendered: dict[str, Path], inventory: str) -> None:
    specs = dict(pod_specs(rendered[inventory]))
    assert specs
    for name, spec in specs.items():
        pod = spec.get("securityContext", {})
        assert spec.get("enableServiceLinks") is False, name
        assert "hostNetwork" not in spec, name
        assert "hostPID" not in spec, name
        for volume in spec.get("volumes", []):
            assert "hostPath" not in volume, name
        for container in spec["containers"] + spec.get("initContainers", []):
            ctx = container.get("securityContext", {})

            def effective(key: str, ctx: dict[str, Any] = ctx, pod: dict[str, Any] = pod) -> Any:
                return ctx.get(key, pod.get(key))

            where = f"{name}/{container['name']}"
            assert effective("runAsNonRoot") is True, where
            assert effective("runAsUser") >= 10000, where
            assert effective("seccompProfile") == {"type": "RuntimeDefault"}, where
            assert ctx.get("allowPrivilegeEscalation") is False, where
            assert ctx.get("capabilities", {}).get("drop") == ["ALL"], where
            assert "add" not in ctx.get("capabilities", {}), where
            assert ctx.get("readOnlyRootFilesystem") is True, where
            assert ctx.get("privileged") is not True, where
            resources = container.get("resources", {})
            for section in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(section, {})), f"{where} lacks {section}"
            image = container["image"]
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            assert tag, f"{where}: image {image} needs an explicit tag"
            assert tag != "latest", f"{where}: image {image} needs an explicit tag"


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_service_deployments_probe_roll_and_stop_gracefully(rendered: dict[str, Path], inventory: str) -> None:
    deployments = [
        d
        for _, d in documents(rendered[inventory])
        if d["kind"] == "Deployment" and d["metadata"]["labels"].get("app.kubernetes.io/component") == "api"
    ]
    assert deployments
    for deployment in deployments:
        spec = deployment["spec"]
        pod = spec["template"]["spec"]
        (container,) = [c for c in pod["containers"] if c["name"] == "prompt-service"]
        live, ready = container["livenessProbe"], container["readinessProbe"]
        assert live["httpGet"]["path"] == "/health"
        assert ready["httpGet"]["path"] == "/ready"
        assert live != ready
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert pod["topologySpreadConstraints"]
        assert pod["automountServiceAccountToken"] is False
        assert "promptops.io/config-checksum" in spec["template"]["metadata"]["annotations"]
        env = {e["name"]: e for e in container["env"]}
        grace = int(env["PROMPT_SHUTDOWN_GRACE_SECONDS"]["value"])
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        # After its grace the service flushes its usage rows; the kubelet must wait for that too.
        flush = ROLE_VARS["_prompt_service_ledger_flush_seconds"]
        assert pod["terminationGracePeriodSeconds"] > pre_stop + grace + flush
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_hpa_owns_replicas_and_pdb_allows_one_disruption(rendered: dict[str, Path], inventory: str) -> None:
    docs = [d for _, d in documents(rendered[inventory])]
    hpas = {d["spec"]["scaleTargetRef"]["name"]: d for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    pdbs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PodDisruptionBudget"}
    assert hpas
    for doc in docs:
        if doc["kind"] != "Deployment" or doc["metadata"]["labels"].get("app.kubernetes.io/component") != "api":
            continue
        name = doc["metadata"]["name"]
        pdb = pdbs[name]["spec"]
        assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
        if name in hpas:
            assert doc["spec"].get("replicas") is None, f"{name}: replicas set although an HPA owns it"
            assert hpas[name]["apiVersion"] == "autoscaling/v2"
            minimum = hpas[name]["spec"]["minReplicas"]
            assert minimum >= 2
        else:
            minimum = doc["spec"]["replicas"]
        # At the minimum, the budget must still let one pod be evicted.
        if "maxUnavailable" in pdb:
            assert pdb["maxUnavailable"] >= 1
        else:
            assert pdb["minAvailable"] <= minimum - 1


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_ingress_class_and_network_policies(rendered: dict[str, Path], inventory: str) -> None:
    docs = [d for _, d in documents(rendered[inventory])]
    ingresses = [d for d in docs if d["kind"] == "Ingress"]
    assert ingresses
    assert all(d["spec"].get("ingressClassName") in {"nginx", "traefik"} for d in ingresses)
    workload_namespaces = {
        d["metadata"]["namespace"] for d in docs if d["kind"] in {"Deployment", "StatefulSet", "CronJob"}
    }
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    for namespace in workload_namespaces:
        deny = [
            p
            for p in policies
            if p["metadata"]["namespace"] == namespace
            and p["spec"]["podSelector"] == {}
            and sorted(p["spec"]["policyTypes"]) == ["Egress", "Ingress"]
            and not p["spec"].get("ingress")
            and not p["spec"].get("egress")
        ]
        assert deny, f"namespace {namespace} has no default-deny NetworkPolicy"
    (namespace,) = [d for d in docs if d["kind"] == "Namespace"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    (default_sa,) = [d for d in docs if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == "default"]
    assert default_sa["automountServiceAccountToken"] is False


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_secrets_only_through_secret_key_refs(rendered: dict[str, Path], inventory: str) -> None:
    docs = [d for _, d in documents(rendered[inventory])]
    assert [d for d in docs if d["kind"] == "Secret"] == []
    secret_like = re.compile(r"(API_KEY|API_KEYS|PASSWORD)$")
    for name, spec in pod_specs(rendered[inventory]):
        for container in spec["containers"]:
            for env in container.get("env", []):
                if secret_like.search(env["name"]):
                    assert "value" not in env, f"{name}: {env['name']} has a literal value"
                    assert "secretKeyRef" in env["valueFrom"], f"{name}: {env['name']}"
            if container["name"] == "prompt-service":
                env = {e["name"]: e for e in container["env"]}
                assert env["PROMPT_UPSTREAM_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "prompt-service-upstream"
    for path in rendered[inventory].iterdir():
        assert not re.search(r"sk-[A-Za-z0-9]{20,}|REPLACE_WITH", path.read_text()), path.name


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_scale_windows_patch_only_their_own_hpa(rendered: dict[str, Path], inventory: str) -> None:
    docs = [d for _, d in documents(rendered[inventory])]
    roles = [d for d in docs if d["kind"] == "Role"]
    cronjobs = [d for d in docs if d["kind"] == "CronJob"]
    assert cronjobs
    for role in roles:
        service = role["metadata"]["labels"]["app.kubernetes.io/instance"]
        assert role["rules"] == [
            {
                "apiGroups": ["autoscaling"],
                "resources": ["horizontalpodautoscalers"],
                "resourceNames": [service],
                "verbs": ["get", "patch"],
            }
        ]
    for job in cronjobs:
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == job["metadata"]["labels"]["app.kubernetes.io/instance"] + "-scaler"


def test_crd_objects_are_well_formed(rendered: dict[str, Path]) -> None:
    """Structural checks for the CRDs kubernetes-validate has no schema for."""
    for directory in rendered.values():
        docs = [d for _, d in documents(directory)]
        services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
        monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
        assert monitors
        for monitor in monitors:
            assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
            assert set(monitor["spec"]) == {"selector", "endpoints"}
            service = services[monitor["metadata"]["name"]]
            assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
            ports = {p["name"] for p in service["spec"]["ports"]}
            for endpoint in monitor["spec"]["endpoints"]:
                assert endpoint["port"] in ports
                assert endpoint["path"] == "/metrics"
                assert re.fullmatch(r"\d+[smh]", endpoint["interval"])
        (rule,) = [d for d in docs if d["kind"] == "PrometheusRule" and d["metadata"]["name"] == "prompt-service"]
        assert rule["apiVersion"] == "monitoring.coreos.com/v1"
        for group in rule["spec"]["groups"]:
            assert set(group) == {"name", "rules"}
            for item in group["rules"]:
                assert set(item) <= {"alert", "expr", "for", "labels", "annotations"}
                assert item["alert"]
                assert item["expr"]
                assert item["labels"]["severity"]
                assert re.fullmatch(r"\d+[smh]", item.get("for", "1m"))


# --- metric names ---------------------------------------------------------------------------


def exported_metric_names() -> set[str]:
    """The names service/app/core/metrics.py exports, read from its source with ast (the
    collection's test environment does not install the service's dependencies). Every
    ``MetricSpec(...)`` call's first argument is resolved, f-strings over module constants included."""
    tree = ast.parse(METRICS_SOURCE.read_text())
    constants: dict[str, str] = {}
    for statement in tree.body:
        target: ast.expr | None = statement.target if isinstance(statement, ast.AnnAssign) else None
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
        value = getattr(statement, "value", None)
        if isinstance(target, ast.Name) and isinstance(value, ast.Constant) and isinstance(value.value, str):
            constants[target.id] = value.value

    def text(node: ast.expr) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(text(v) for v in node.values)
        if isinstance(node, ast.FormattedValue) and isinstance(node.value, ast.Name):
            return constants[node.value.id]
        raise AssertionError(f"cannot resolve a metric name at line {node.lineno}")

    specs: dict[str, str] = {}
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "MetricSpec":
            kind = call.args[1].value if isinstance(call.args[1], ast.Constant) else None
            specs[text(call.args[0])] = str(kind)
    assert len(specs) >= 5, "metrics.py no longer defines metrics with MetricSpec: update this test"
    names = set()
    for name, kind in specs.items():
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless"}


def metric_names_in(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (labels, functions, durations and keywords removed)."""
    expr = re.sub(r"label_values\(\s*([^,()]+?)\s*,\s*\w+\s*\)", r"\1", expr)
    expr = re.sub(r'"(?:\\.|[^"\\])*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        word = match.group(0)
        following = expr[match.end() :].lstrip()
        if word in PROMQL_WORDS or following.startswith("(") or re.fullmatch(r"\d+[smhdwy]?", word):
            continue
        names.add(word)
    return names


def test_metric_name_extraction() -> None:
    assert metric_names_in('sum by (service) (rate(a_total{x="y"}[5m])) / b_count > 0.1') == {"a_total", "b_count"}
    assert metric_names_in('label_values(c_total{namespace="$namespace"}, service)') == {"c_total"}
    assert metric_names_in("histogram_quantile(0.95, sum by (le) (rate(d_bucket[$__rate_interval])))") == {"d_bucket"}


def monitoring_queries(directory: Path) -> list[str]:
    docs = [d for _, d in documents(directory)]
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule" and d["metadata"]["name"] == "prompt-service"]
    queries = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {"PromptServiceHighErrorRate", "PromptServiceHighLatency", "PromptServiceUpstreamFailures"} <= alerts
    assert "PromptServiceCacheErrors" in alerts
    (dashboard_cm,) = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "prompt-service-dashboard"
    ]
    assert dashboard_cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    (body,) = dashboard_cm["data"].values()
    dashboard = json.loads(body)
    assert dashboard["uid"]
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        queries += [t["expr"] for t in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            queries.append(variable["query"]["query"])
    return queries


def test_dashboard_and_alerts_use_only_exported_metrics(rendered: dict[str, Path]) -> None:
    exported = exported_metric_names()
    for directory in rendered.values():
        queries = monitoring_queries(directory)
        assert len(queries) > 10
        for query in queries:
            used = metric_names_in(query)
            assert used, f"no metric in {query!r}"
            assert used <= exported, f"{sorted(used - exported)} not exported by the service (query {query!r})"


def test_termination_margin_covers_the_ledger_flush_of_the_service() -> None:
    """The role's copy of the service's flush bound must match the service's own constant."""
    tree = ast.parse((ROOT / "service" / "app" / "main.py").read_text())
    (value,) = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "LEDGER_FLUSH_ON_SHUTDOWN_SECONDS" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    assert value == ROLE_VARS["_prompt_service_ledger_flush_seconds"]
    assert ROLE_DEFAULTS["prompt_service_termination_margin_seconds"] > value


# --- NetworkPolicy: who may talk to whom -----------------------------------------------------


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"selector form not handled by this test: {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _peer_matches(peer: dict[str, Any], pod: dict[str, Any], policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        return pod["namespace"] is None and block["cidr"] == "0.0.0.0/0"  # an address outside the cluster
    if pod["namespace"] is None:
        return False
    if "namespaceSelector" in peer:
        namespace_labels = {"kubernetes.io/metadata.name": pod["namespace"]}
        if not _selects(peer["namespaceSelector"], namespace_labels):
            return False
    elif pod["namespace"] != policy_namespace:
        return False
    return _selects(peer.get("podSelector", {}), pod["labels"])


def _allowed_by(
    policies: list[dict[str, Any]], pod: dict[str, Any], direction: str, peer: dict[str, Any], port: int, protocol: str
) -> bool:
    """Does NetworkPolicy let ``pod`` send (Egress) to, or receive (Ingress) from, ``peer`` on port/protocol?"""
    if pod["namespace"] is None:
        return True  # outside the cluster: no NetworkPolicy applies
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == pod["namespace"]
        and direction in p["spec"]["policyTypes"]
        and _selects(p["spec"]["podSelector"], pod["labels"])
    ]
    if not selecting:
        return True
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    for policy in selecting:
        for rule in policy["spec"].get(key) or []:
            ports = rule.get("ports")
            port_ok = not ports or any(p["port"] == port and p.get("protocol", "TCP") == protocol for p in ports)
            peers = rule.get(peers_key)
            peer_ok = not peers or any(_peer_matches(x, peer, policy["metadata"]["namespace"]) for x in peers)
            if port_ok and peer_ok:
                return True
    return False


def _can_connect(
    policies: list[dict[str, Any]], source: dict[str, Any], target: dict[str, Any], port: int, protocol: str = "TCP"
) -> bool:
    return _allowed_by(policies, source, "Egress", target, port, protocol) and _allowed_by(
        policies, target, "Ingress", source, port, protocol
    )


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_network_policies_allow_exactly_the_paths_the_fleet_needs(rendered: dict[str, Path], inventory: str) -> None:
    docs = [d for _, d in documents(rendered[inventory])]
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    namespace = ROLE_DEFAULTS["prompt_service_namespace"]

    def workload(kind: str, name: str) -> dict[str, Any]:
        (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
        return {"namespace": doc["metadata"]["namespace"], "labels": doc["spec"]["template"]["metadata"]["labels"]}

    apis = [
        workload("Deployment", d["metadata"]["name"])
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["labels"].get("app.kubernetes.io/component") == "api"
    ]
    redis, postgres = workload("Deployment", "redis"), workload("StatefulSet", "postgres")
    ingress_controller = {
        "namespace": ROLE_DEFAULTS["prompt_service_ingress_controller_namespace"],
        "labels": {"app.kubernetes.io/name": "rke2-ingress-nginx"},
    }
    dns = {"namespace": ROLE_DEFAULTS["prompt_service_dns_namespace"], "labels": {"k8s-app": "kube-dns"}}
    elsewhere = {"namespace": "other-team", "labels": {"app": "curious"}}
    upstream: dict[str, Any] = {"namespace": None, "labels": {}}
    port = ROLE_DEFAULTS["prompt_service_port"]
    assert apis
    assert redis["namespace"] == postgres["namespace"] == namespace

    for api in apis:
        assert _can_connect(policies, ingress_controller, api, port)
        assert _can_connect(policies, api, redis, 6379)
        assert _can_connect(policies, api, postgres, 5432)
        assert _can_connect(policies, api, dns, 53, "UDP")
        assert _can_connect(policies, api, dns, 53, "TCP")
        assert _can_connect(policies, api, upstream, 443)
        # ... and nothing else.
        assert not _can_connect(policies, elsewhere, api, port)
        assert not _can_connect(policies, api, redis, 5432)
        assert not _can_connect(policies, api, elsewhere, 8080)
    assert not _can_connect(policies, ingress_controller, redis, 6379)
    assert not _can_connect(policies, ingress_controller, postgres, 5432)
    assert not _can_connect(policies, elsewhere, postgres, 5432)
    assert not _can_connect(policies, redis, postgres, 5432)
    assert not _can_connect(policies, redis, upstream, 443)
    assert not _can_connect(policies, postgres, upstream, 443)


# --- apply mode's prune: what a full run keeps -------------------------------------------------

KEEP_LIST_PLAY = """\
- name: Build the manifests and write the list of objects a full apply keeps
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    prompt_service_deploy_mode: render
  roles:
    - role: promptops.cluster.prompt_service
  post_tasks:
    - name: Write the keep-list of prune.yml
      ansible.builtin.copy:
        content: "{{ _prompt_service_desired | to_json }}"
        dest: "{{ prompt_service_render_dir }}/../desired.json"
        mode: "0644"
"""


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_prune_keeps_every_object_of_the_services_including_their_key_secrets(tmp_path: Path, inventory: str) -> None:
    playbook = tmp_path / "keep.yml"
    playbook.write_text(KEEP_LIST_PLAY)
    result = ansible_playbook(
        "-i", str(ROOT / "inventory" / inventory), str(playbook), "-e", f"prompt_service_render_dir={tmp_path / 'tree'}"
    )
    assert result.returncode == 0, result.stdout[-3000:]
    desired = set(json.loads((tmp_path / "desired.json").read_text()))

    rendered_objects = {
        f"{doc['kind']}/{doc['metadata']['name']}"
        for name, doc in documents(tmp_path / "tree")
        if name.startswith("service-")
    }
    assert rendered_objects
    assert rendered_objects <= desired
    # Apply mode also creates one client-key Secret per service with auth (the default): prune
    # selects Secrets by the services' labels, so each must be on the list.
    entries = yaml.safe_load(
        re.sub(
            r"!unsafe ", "", (ROOT / "inventory" / inventory / "group_vars" / "all" / "prompt_services.yml").read_text()
        )
    )["prompt_services"]
    key_secrets = {f"Secret/{e['name']}-api-keys" for e in entries if e.get("auth", True)}
    assert key_secrets
    assert key_secrets <= desired
    assert desired == rendered_objects | key_secrets


def test_backup_alerts_ship_as_a_prometheus_rule_equal_to_the_backup_roles_file(rendered: dict[str, Path]) -> None:
    docs = [d for _, d in documents(rendered["all-in-one"])]
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule" and d["metadata"]["name"] == "promptops-backup"]
    shipped = yaml.safe_load((ROOT / "roles" / "backup" / "files" / "backup-alerts.yml").read_text())
    assert rule["spec"] == shipped
    assert {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]} >= {"PromptopsBackupStale"}


@pytest.mark.parametrize("suffix", ["/", "//", "/./"])
def test_a_render_dir_written_with_extra_slashes_keeps_every_service(tmp_path: Path, suffix: str) -> None:
    """The removal of dropped services compares paths: an odd spelling of the dir must not
    make every current service look dropped."""
    target = str(tmp_path / "tree") + suffix
    args = ["-i", str(ROOT / "inventory" / "all-in-one"), str(ROOT / "site.yml"), "--tags", "prompt_service"]
    args += ["-e", "prompt_service_deploy_mode=render", "-e", f"prompt_service_render_dir={target}"]
    for _ in range(2):  # the second run is the one that removes dropped services
        assert ansible_playbook(*args).returncode == 0
    assert sorted(p.name for p in (tmp_path / "tree").glob("service-*.yaml")) == [
        "service-summarizer.yaml",
        "service-translator.yaml",
    ]


def test_a_relative_render_dir_is_refused(tmp_path: Path) -> None:
    result = ansible_playbook(
        "-i",
        str(ROOT / "inventory" / "all-in-one"),
        str(ROOT / "site.yml"),
        "--tags",
        "prompt_service",
        "-e",
        "prompt_service_deploy_mode=render",
        "-e",
        "prompt_service_render_dir=relative/out",
    )
    assert result.returncode != 0
    assert "prompt_service_render_dir, an absolute path" in result.stdout
    assert not (ROOT / "playbooks" / "relative").exists()
    assert not (ROOT / "relative").exists()


def test_the_roles_list_of_service_settings_matches_the_service() -> None:
    """settings of an entry are checked against this list; the service's Settings are the truth."""
    tree = ast.parse((ROOT / "service" / "app" / "core" / "config.py").read_text())
    (settings,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings"]
    fields = {s.target.id for s in settings.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
    assert set(ROLE_VARS["_prompt_service_service_settings"]) == fields
