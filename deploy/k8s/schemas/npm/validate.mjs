// Validate custom resources with the @kubernetes-models validators (Strimzi 0.49/1.0 CRDs,
// CloudNativePG, KEDA and Prometheus Operator API types). Reads a JSON array of resources on
// stdin; prints a JSON array of {apiVersion, kind, name, errors} (errors null: not covered).
import { readFileSync } from 'node:fs';

const MODULES = {
  'kafka.strimzi.io/v1': '@kubernetes-models/strimzi-kafka-operator/kafka.strimzi.io/v1',
  'postgresql.cnpg.io/v1': '@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1',
  'keda.sh/v1alpha1': '@kubernetes-models/keda/keda.sh/v1alpha1',
  'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
};

const results = [];
for (const resource of JSON.parse(readFileSync(0, 'utf8'))) {
  const { apiVersion, kind } = resource;
  const result = { apiVersion, kind, name: resource.metadata?.name, errors: null };
  results.push(result);
  const module = MODULES[apiVersion] && (await import(MODULES[apiVersion]));
  if (!module || !module[kind]) continue;
  try {
    new module[kind](resource).validate();
    result.errors = [];
  } catch (error) {
    result.errors = (error.errors ?? [{ message: String(error) }]).map(
      (e) => `${e.instancePath ?? ''} ${e.message}${e.params ? ' ' + JSON.stringify(e.params) : ''}`,
    );
  }
}
process.stdout.write(JSON.stringify(results));
