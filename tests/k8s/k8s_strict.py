"""Unknown-field checks the schemas do not make.

The CRD schemas (Istio, Prometheus operator) and the kubernetes-models
validators accept extra properties, so a `circuitBreaker:` block in a
DestinationRule passes them and Istio silently ignores it. Here:

- Flagger kinds: every object key must be a property of the CRD's
  openAPIV3Schema (tests/k8s/schemas/flagger-crd.yaml), unless that node is a map
  (additionalProperties) or preserves unknown fields.
- Every other kind the chart renders: an allow-list of the fields that exist,
  per kind, written from the API references (Istio networking/extensions,
  Prometheus operator, Kubernetes, VPA autoscaling.k8s.io/v1). ANY marks a
  subtree that is free-form or validated elsewhere (labels, Envoy config inside
  EnvoyFilter patches: `envoy --mode validate` checks those).
"""

ANY = object()


def L(tree):  # a list whose items follow tree
    return [tree]


META = {"name": ANY, "namespace": ANY, "labels": ANY, "annotations": ANY}
DURATION = ANY
PORT_SEL = {"number": ANY, "name": ANY}

# --- Istio networking.istio.io/v1 (DestinationRule, VirtualService) ---------
TRAFFIC_POLICY = {
    "loadBalancer": {"simple": ANY, "consistentHash": ANY, "localityLbSetting": ANY, "warmupDurationSecs": ANY,
                     "warmup": ANY},
    "connectionPool": {
        "tcp": {"maxConnections": ANY, "connectTimeout": DURATION, "tcpKeepalive": ANY, "maxConnectionDuration": ANY,
                "idleTimeout": ANY},
        "http": {"http1MaxPendingRequests": ANY, "http2MaxRequests": ANY, "maxRequestsPerConnection": ANY,
                 "maxRetries": ANY, "idleTimeout": ANY, "h2UpgradePolicy": ANY, "useClientProtocol": ANY,
                 "maxConcurrentStreams": ANY},
    },
    "outlierDetection": {"consecutive5xxErrors": ANY, "consecutiveGatewayErrors": ANY,
                         "consecutiveLocalOriginFailures": ANY, "splitExternalLocalOriginErrors": ANY,
                         "interval": DURATION, "baseEjectionTime": DURATION, "maxEjectionPercent": ANY,
                         "minHealthPercent": ANY},
    "tls": ANY,
    "portLevelSettings": ANY,
    "tunnel": ANY,
    "proxyProtocol": ANY,
    "retryBudget": ANY,
}
DESTINATION = {"host": ANY, "subset": ANY, "port": PORT_SEL}
STRING_MATCH = {"exact": ANY, "prefix": ANY, "regex": ANY}
HTTP_MATCH = {"name": ANY, "uri": STRING_MATCH, "scheme": STRING_MATCH, "method": STRING_MATCH,
              "authority": STRING_MATCH, "headers": ANY, "port": ANY, "sourceLabels": ANY, "gateways": ANY,
              "queryParams": ANY, "ignoreUriCase": ANY, "withoutHeaders": ANY, "sourceNamespace": ANY,
              "statPrefix": ANY}
HTTP_ROUTE = {
    "name": ANY, "match": L(HTTP_MATCH),
    "route": L({"destination": DESTINATION, "weight": ANY, "headers": ANY}),
    "redirect": ANY, "directResponse": ANY, "delegate": {"name": ANY, "namespace": ANY}, "rewrite": ANY,
    "timeout": DURATION,
    "retries": {"attempts": ANY, "perTryTimeout": DURATION, "retryOn": ANY, "retryRemoteLocalities": ANY,
                "retryIgnorePreviousHosts": ANY, "backoff": ANY},
    "fault": ANY, "mirror": DESTINATION, "mirrors": ANY, "mirrorPercentage": {"value": ANY}, "corsPolicy": ANY,
    "headers": ANY,
}

# --- Kubernetes --------------------------------------------------------------
PROBE = {"httpGet": {"path": ANY, "port": ANY, "scheme": ANY, "httpHeaders": ANY}, "initialDelaySeconds": ANY,
         "periodSeconds": ANY, "timeoutSeconds": ANY, "failureThreshold": ANY, "successThreshold": ANY,
         "terminationGracePeriodSeconds": ANY}
CONTAINER = {
    "name": ANY, "image": ANY, "imagePullPolicy": ANY, "command": ANY, "args": ANY,
    "ports": L({"name": ANY, "containerPort": ANY, "protocol": ANY}),
    "env": ANY, "envFrom": ANY, "startupProbe": PROBE, "livenessProbe": PROBE, "readinessProbe": PROBE,
    "resources": {"requests": {"cpu": ANY, "memory": ANY}, "limits": {"cpu": ANY, "memory": ANY}},
    "securityContext": {"allowPrivilegeEscalation": ANY, "readOnlyRootFilesystem": ANY,
                        "capabilities": {"drop": ANY, "add": ANY}, "runAsNonRoot": ANY, "runAsUser": ANY,
                        "runAsGroup": ANY, "privileged": ANY, "seccompProfile": ANY},
    "volumeMounts": L({"name": ANY, "mountPath": ANY, "readOnly": ANY, "subPath": ANY}),
}
POD_SPEC = {
    "containers": L(CONTAINER), "volumes": ANY, "securityContext": {
        "runAsNonRoot": ANY, "runAsUser": ANY, "runAsGroup": ANY, "fsGroup": ANY, "seccompProfile": {"type": ANY}},
    "automountServiceAccountToken": ANY, "terminationGracePeriodSeconds": ANY, "imagePullSecrets": ANY,
    "nodeSelector": ANY, "affinity": ANY, "tolerations": ANY, "topologySpreadConstraints": ANY,
    "serviceAccountName": ANY,
}
LABEL_SELECTOR = {"matchLabels": ANY, "matchExpressions": ANY}

ALLOWED = {
    ("networking.istio.io", "DestinationRule"): {
        "spec": {"host": ANY, "trafficPolicy": TRAFFIC_POLICY, "subsets": ANY, "exportTo": ANY,
                 "workloadSelector": ANY}},
    ("networking.istio.io", "VirtualService"): {
        "spec": {"hosts": ANY, "gateways": ANY, "http": L(HTTP_ROUTE), "tls": ANY, "tcp": ANY, "exportTo": ANY}},
    ("extensions.istio.io", "WasmPlugin"): {
        "spec": {"selector": LABEL_SELECTOR, "targetRef": ANY, "targetRefs": ANY, "url": ANY, "sha256": ANY,
                 "imagePullPolicy": ANY, "imagePullSecret": ANY, "pluginConfig": ANY, "pluginName": ANY,
                 "phase": ANY, "priority": ANY, "failStrategy": ANY, "vmConfig": ANY, "match": L({"mode": ANY,
                                                                                                 "ports": ANY}),
                 "type": ANY}},
    ("networking.istio.io", "EnvoyFilter"): {
        "spec": {"workloadSelector": {"labels": ANY}, "targetRefs": ANY, "priority": ANY, "configPatches": L({
            "applyTo": ANY,
            "match": {"context": ANY, "proxy": ANY, "listener": {
                "portNumber": ANY, "name": ANY, "filterChain": {
                    "name": ANY, "sni": ANY, "transportProtocol": ANY, "applicationProtocols": ANY,
                    "destinationPort": ANY, "filter": {"name": ANY, "subFilter": {"name": ANY}}}},
                "routeConfiguration": ANY, "cluster": ANY},
            "patch": {"operation": ANY, "value": ANY, "filterClass": ANY}})}},
    ("monitoring.coreos.com", "ServiceMonitor"): {
        "spec": {"jobLabel": ANY, "targetLabels": ANY, "podTargetLabels": ANY, "selector": LABEL_SELECTOR,
                 "namespaceSelector": {"matchNames": ANY, "any": ANY}, "sampleLimit": ANY,
                 "endpoints": L({"port": ANY, "targetPort": ANY, "path": ANY, "scheme": ANY, "interval": ANY,
                                 "scrapeTimeout": ANY, "honorLabels": ANY, "relabelings": ANY,
                                 "metricRelabelings": ANY, "tlsConfig": ANY, "params": ANY})}},
    ("monitoring.coreos.com", "PrometheusRule"): {
        "spec": {"groups": L({"name": ANY, "interval": ANY, "limit": ANY, "labels": ANY,
                              "rules": L({"alert": ANY, "record": ANY, "expr": ANY, "for": ANY,
                                          "keep_firing_for": ANY, "labels": ANY, "annotations": ANY})})}},
    ("autoscaling.k8s.io", "VerticalPodAutoscaler"): {
        "spec": {"targetRef": {"apiVersion": ANY, "kind": ANY, "name": ANY},
                 "updatePolicy": {"updateMode": ANY, "minReplicas": ANY, "evictionRequirements": ANY},
                 "resourcePolicy": {"containerPolicies": L({
                     "containerName": ANY, "mode": ANY, "minAllowed": {"cpu": ANY, "memory": ANY},
                     "maxAllowed": {"cpu": ANY, "memory": ANY}, "controlledResources": ANY,
                     "controlledValues": ANY})},
                 "recommenders": ANY}},
    ("apps", "Deployment"): {
        "spec": {"replicas": ANY, "revisionHistoryLimit": ANY, "selector": LABEL_SELECTOR, "minReadySeconds": ANY,
                 "progressDeadlineSeconds": ANY, "paused": ANY,
                 "strategy": {"type": ANY, "rollingUpdate": {"maxSurge": ANY, "maxUnavailable": ANY}},
                 "template": {"metadata": META, "spec": POD_SPEC}}},
    ("", "Service"): {
        "spec": {"type": ANY, "selector": ANY, "ports": L({"name": ANY, "port": ANY, "targetPort": ANY,
                                                             "protocol": ANY, "appProtocol": ANY}),
                 "clusterIP": ANY, "sessionAffinity": ANY}},
    ("", "ConfigMap"): {"data": ANY, "binaryData": ANY, "immutable": ANY},
    # The quickstart's objects (deploy/k8s/quickstart/).
    ("", "Namespace"): {},
    ("", "PersistentVolumeClaim"): {
        "spec": {"accessModes": ANY, "resources": {"requests": {"storage": ANY}, "limits": ANY},
                 "storageClassName": ANY, "volumeMode": ANY, "selector": LABEL_SELECTOR, "volumeName": ANY}},
    ("", "Pod"): {"spec": {**POD_SPEC, "restartPolicy": ANY, "activeDeadlineSeconds": ANY}},
    ("networking.istio.io", "Gateway"): {
        "spec": {"selector": ANY, "servers": L({
            "port": {"number": ANY, "name": ANY, "protocol": ANY, "targetPort": ANY}, "bind": ANY, "name": ANY,
            "hosts": ANY, "defaultEndpoint": ANY,
            "tls": {"httpsRedirect": ANY, "mode": ANY, "credentialName": ANY, "credentialNames": ANY,
                    "minProtocolVersion": ANY, "maxProtocolVersion": ANY, "cipherSuites": ANY,
                    "subjectAltNames": ANY, "serverCertificate": ANY, "privateKey": ANY, "caCertificates": ANY,
                    "caCrl": ANY, "verifyCertificateSpki": ANY, "verifyCertificateHash": ANY}})}},
    ("autoscaling", "HorizontalPodAutoscaler"): {
        "spec": {"scaleTargetRef": {"apiVersion": ANY, "kind": ANY, "name": ANY}, "minReplicas": ANY,
                 "maxReplicas": ANY, "metrics": L({
                     "type": ANY,
                     "resource": {"name": ANY, "target": {"type": ANY, "averageUtilization": ANY,
                                                          "averageValue": ANY, "value": ANY}},
                     "pods": {"metric": {"name": ANY, "selector": ANY},
                              "target": {"type": ANY, "averageValue": ANY}},
                     "object": ANY, "external": ANY, "containerResource": ANY}),
                 "behavior": {"scaleUp": ANY, "scaleDown": ANY}}},
    ("policy", "PodDisruptionBudget"): {
        "spec": {"maxUnavailable": ANY, "minAvailable": ANY, "selector": LABEL_SELECTOR,
                 "unhealthyPodEvictionPolicy": ANY}},
    ("networking.k8s.io", "NetworkPolicy"): {
        "spec": {"podSelector": LABEL_SELECTOR, "policyTypes": ANY,
                 "ingress": L({"from": L({"namespaceSelector": LABEL_SELECTOR, "podSelector": LABEL_SELECTOR,
                                          "ipBlock": ANY}), "ports": L({"protocol": ANY, "port": ANY,
                                                                         "endPort": ANY})}),
                 "egress": L({"to": L({"namespaceSelector": LABEL_SELECTOR, "podSelector": LABEL_SELECTOR,
                                       "ipBlock": ANY}), "ports": L({"protocol": ANY, "port": ANY,
                                                                     "endPort": ANY})})}},
}


def _walk(value, tree, path, errors):
    if tree is ANY:
        return
    if isinstance(tree, list):
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list")
            return
        for i, item in enumerate(value):
            _walk(item, tree[0], f"{path}[{i}]", errors)
        return
    if not isinstance(value, dict):
        errors.append(f"{path}: expected an object")
        return
    for key, sub in value.items():
        if key not in tree:
            errors.append(f"{path}.{key}: unknown field")
        else:
            _walk(sub, tree[key], f"{path}.{key}", errors)


def _walk_schema(value, schema, path, errors):
    if not isinstance(schema, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict) and "properties" in schema:
        for key, sub in value.items():
            if key in schema["properties"]:
                _walk_schema(sub, schema["properties"][key], f"{path}.{key}", errors)
            elif not schema.get("additionalProperties"):
                errors.append(f"{path}.{key}: unknown field")
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, sub in value.items():
            _walk_schema(sub, schema["additionalProperties"], f"{path}.{key}", errors)
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _walk_schema(item, schema["items"], f"{path}[{i}]", errors)


def unknown_fields(doc, crd_schemas):
    """Unknown field paths of one manifest; crd_schemas: {(group, kind): openAPIV3Schema}."""
    group = doc["apiVersion"].rpartition("/")[0]
    kind = doc["kind"]
    errors = []
    if (group, kind) in crd_schemas:
        _walk_schema(doc, crd_schemas[(group, kind)], kind, errors)
        return errors
    if (group, kind) not in ALLOWED:
        return [f"{kind} ({doc['apiVersion']}): no allow-list: add one to tests/k8s/k8s_strict.py"]
    tree = {"apiVersion": ANY, "kind": ANY, "metadata": META, **ALLOWED[(group, kind)]}
    _walk(doc, tree, kind, errors)
    return errors
