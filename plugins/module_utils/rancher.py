# Copyright: Prompt Cluster maintainers
# Apache-2.0 (see galaxy.yml)
"""A small client for the parts of Rancher's v3 API the rancher role uses.

Every `ensure_*` method reads first and writes only when the server differs from what is
asked, so the modules built on it report `changed` truthfully and a second run changes
nothing. In check mode (`dry_run=True`) reads happen and writes are only reported.
Only the Python standard library is used: the modules run on the Rancher host, which has
nothing but python3.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

MIN_PASSWORD_LENGTH = 12
VERSION_MANAGEMENT_ANNOTATION = "rancher.io/imported-cluster-version-management"


class RancherError(Exception):
    """An answer Rancher gave with an error status, or no answer at all (status 0)."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        self.method, self.path, self.status, self.body = method, path, status, body
        detail = body.get("message") or body.get("code") if isinstance(body, dict) else body
        code = body.get("code") if isinstance(body, dict) else None
        self.code: str | None = code
        super().__init__(f"{method} {path}: HTTP {status}{' ' + code if code else ''}: {detail}")


class RancherClient:
    def __init__(
        self,
        url: str,
        token: str | None = None,
        validate_certs: bool = True,
        ca_path: str | None = None,
        timeout: float = 30,
        dry_run: bool = False,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.dry_run = dry_run
        if validate_certs:
            self.context = ssl.create_default_context(cafile=ca_path or None)
        else:
            self.context = ssl.create_default_context()
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE

    # --- transport ------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
        auth: bool = True,
        raw: bool = False,
    ) -> Any:
        full = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(full, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as resp:
                payload = resp.read().decode()
        except urllib.error.HTTPError as err:
            text = err.read().decode(errors="replace")
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = text[:300]
            raise RancherError(method, path, err.code, parsed) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise RancherError(method, path, 0, f"no answer from {self.url}: {reason}") from None
        if raw:
            return payload
        return json.loads(payload) if payload else {}

    # --- authentication -------------------------------------------------------------------
    def login(self, username: str, password: str, ttl_ms: int = 0, description: str = "") -> dict[str, Any] | None:
        """Log in to the local provider. Returns the token object, or None when the password is wrong."""
        body: dict[str, Any] = {
            "username": username,
            "password": password,
            "responseType": "token",
            "description": description,
        }
        if ttl_ms:
            body["ttl"] = ttl_ms
        try:
            token: dict[str, Any] = self.request(
                "POST", "/v3-public/localProviders/local", body, {"action": "login"}, auth=False
            )
        except RancherError as err:
            if err.status == 401:
                return None
            raise
        return token

    def use_token(self, token: str) -> None:
        self.token = token

    def change_password(self, current: str, new: str) -> None:
        if len(new) < MIN_PASSWORD_LENGTH:
            raise ValueError(
                f"the new password has {len(new)} characters; Rancher needs at least {MIN_PASSWORD_LENGTH}"
            )
        if not self.dry_run:
            self.request(
                "POST", "/v3/users", {"currentPassword": current, "newPassword": new}, {"action": "changepassword"}
            )

    def logout(self, token: str, *, even_in_dry_run: bool = False) -> bool:
        """Delete a token. False when it was already gone (expired or deleted).

        even_in_dry_run: a login makes a token in check mode too; this ends such a session."""
        name = token.split(":", 1)[0]
        previous, self.token = self.token, token
        try:
            if even_in_dry_run or not self.dry_run:
                self.request("DELETE", f"/v3/tokens/{name}")
        except RancherError as err:
            if err.status in (401, 404):
                return False
            raise
        finally:
            self.token = previous
        return True

    # --- settings -------------------------------------------------------------------------
    def get_setting(self, name: str) -> str:
        value: Any = self.request("GET", f"/v3/settings/{name}").get("value", "")
        return str(value)

    def ensure_setting(self, name: str, value: str) -> bool:
        if self.get_setting(name) == value:
            return False
        if not self.dry_run:
            self.request("PUT", f"/v3/settings/{name}", {"value": value})
        return True

    # --- clusters -------------------------------------------------------------------------
    def find_cluster(self, name: str) -> dict[str, Any] | None:
        found = [
            c
            for c in self.request("GET", "/v3/clusters", query={"name": name}).get("data", [])
            if c.get("name") == name
        ]
        if len(found) > 1:
            raise RancherError("GET", "/v3/clusters", 409, f"{len(found)} clusters are named {name}")
        return found[0] if found else None

    def get_cluster(self, cluster_id: str) -> dict[str, Any]:
        cluster: dict[str, Any] = self.request("GET", f"/v3/clusters/{cluster_id}")
        return cluster

    def ensure_cluster(
        self, name: str, description: str = "", annotations: dict[str, str] | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Find the cluster by name or create it; then make the given annotations match."""
        wanted = dict(annotations or {})
        cluster = self.find_cluster(name)
        if cluster is None:
            if self.dry_run:
                return {"id": "", "name": name, "state": "", "annotations": wanted}, True
            body = {"type": "cluster", "name": name, "description": description, "annotations": wanted}
            try:
                return self.request("POST", "/v3/clusters", body), True
            except RancherError as err:
                # Another run created it between our lookup and our POST: use that one.
                if err.status == 422 and err.code == "NotUnique":
                    cluster = self.find_cluster(name)
                    if cluster is None:
                        raise
                else:
                    raise
        current = cluster.get("annotations") or {}
        if all(current.get(k) == v for k, v in wanted.items()):
            return cluster, False
        if not self.dry_run:
            cluster = self.request("PUT", f"/v3/clusters/{cluster['id']}", {"annotations": {**current, **wanted}})
        return cluster, True

    def ensure_registration_token(
        self, cluster_id: str, wait_seconds: float = 30, interval: float = 1
    ) -> tuple[dict[str, Any], bool]:
        """The cluster's registration token with its manifestUrl; created when the cluster has none."""
        changed = False
        try:
            token: dict[str, Any] = self.request("GET", f"/v3/clusterregistrationtokens/{cluster_id}:default-token")
        except RancherError as err:
            if err.status != 404:
                raise
            tokens = self.request("GET", "/v3/clusterregistrationtokens", query={"clusterId": cluster_id}).get(
                "data", []
            )
            if tokens:
                token = tokens[0]
            elif self.dry_run:
                return {"clusterId": cluster_id, "manifestUrl": ""}, True
            else:
                token = self.request(
                    "POST",
                    "/v3/clusterregistrationtokens",
                    {"type": "clusterRegistrationToken", "clusterId": cluster_id},
                )
                changed = True
        # Rancher fills manifestUrl in asynchronously after the token object exists.
        deadline = time.monotonic() + wait_seconds
        while not token.get("manifestUrl") and time.monotonic() < deadline:
            time.sleep(interval)
            token = self.request("GET", f"/v3/clusterregistrationtokens/{token['id']}")
        if not token.get("manifestUrl"):
            raise RancherError("GET", "/v3/clusterregistrationtokens", 0, f"no manifestUrl after {wait_seconds}s")
        return token, changed

    def fetch_manifest(self, manifest_url: str) -> str:
        """Read the import manifest through this client's URL (the manifest's host may not resolve here)."""
        parts = urllib.parse.urlsplit(manifest_url)
        text: str = self.request("GET", parts.path, auth=False, raw=True)
        return text

    # --- projects -------------------------------------------------------------------------
    def ensure_project(self, cluster_id: str, name: str, description: str = "") -> tuple[dict[str, Any], bool]:
        found = self.request("GET", "/v3/projects", query={"clusterId": cluster_id, "name": name}).get("data", [])
        found = [p for p in found if p.get("name") == name and p.get("clusterId") == cluster_id]
        if found:
            return found[0], False
        if self.dry_run:
            return {"id": "", "name": name, "clusterId": cluster_id}, True
        body = {"type": "project", "name": name, "clusterId": cluster_id, "description": description}
        project: dict[str, Any] = self.request("POST", "/v3/projects", body)
        return project, True

    def ensure_project_binding(
        self, project_id: str, role: str, user_principal: str = "", group_principal: str = ""
    ) -> bool:
        if bool(user_principal) == bool(group_principal):
            raise ValueError("a project binding needs exactly one of user_principal and group_principal")
        query = {"projectId": project_id, "roleTemplateId": role}
        if user_principal:
            query["userPrincipalId"] = user_principal
        else:
            query["groupPrincipalId"] = group_principal
        if self.request("GET", "/v3/projectroletemplatebindings", query=query).get("data"):
            return False
        if not self.dry_run:
            self.request("POST", "/v3/projectroletemplatebindings", {"type": "projectRoleTemplateBinding", **query})
        return True
