// Validates Kubernetes manifests against the schemas shipped in the npm
// kubernetes-models packages (core kinds, Istio, Prometheus operator).
//   node tests/k8s/validate.mjs FILE.yaml...
// Prints one JSON object per document: {file, index, apiVersion, kind, name,
// status: "ok" | "invalid" | "no-model", error}. Exit status 0 even when a
// document is invalid: the caller (test_schemas.py) decides.
// Kinds without a model here (Flagger, VPA) are reported as "no-model" and
// checked by the Python tests.
import fs from "node:fs";
import yaml from "js-yaml";

function modulePath(apiVersion) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "") return `kubernetes-models/${version}`;
  if (group.endsWith("istio.io")) return `@kubernetes-models/istio/${group}/${version}`;
  if (group === "monitoring.coreos.com") return `@kubernetes-models/prometheus-operator/${group}/${version}`;
  if (group.endsWith(".k8s.io") && group !== "autoscaling.k8s.io") return `kubernetes-models/${group}/${version}`;
  if (["apps", "autoscaling", "batch", "policy"].includes(group)) return `kubernetes-models/${group}/${version}`;
  return null;
}

async function modelFor(apiVersion, kind) {
  const path = modulePath(apiVersion);
  if (!path) return null;
  try {
    const mod = await import(path);
    return mod[kind] ?? null;
  } catch (e) {
    if (e.code === "ERR_MODULE_NOT_FOUND" || e.code === "ERR_PACKAGE_PATH_NOT_EXPORTED") return null;
    throw e;
  }
}

for (const file of process.argv.slice(2)) {
  const docs = yaml.loadAll(fs.readFileSync(file, "utf8")).filter((d) => d != null);
  for (const [index, doc] of docs.entries()) {
    const out = { file, index, apiVersion: doc.apiVersion, kind: doc.kind, name: doc.metadata?.name };
    const Model = await modelFor(doc.apiVersion ?? "", doc.kind ?? "");
    if (!Model) {
      out.status = "no-model";
    } else {
      try {
        new Model(doc).validate();
        out.status = "ok";
      } catch (e) {
        out.status = "invalid";
        out.error = String(e.message ?? e);
      }
    }
    console.log(JSON.stringify(out));
  }
}
