"""The Kubernetes GPU job renders: the pool's base job template (deploy/k8s-gpu-job-template.json)
with the `nightly-gpu` deployment's job variables (prefect.yaml), filled in by prefect-kubernetes'
own worker configuration as its worker does for a flow run, is a valid batch/v1 Job for the
Kubernetes client's models. No cluster is needed."""
import asyncio
import json
import re
import uuid

import jsonschema
import pytest
import yaml

from tests.conftest import REPO

pytest.importorskip("prefect_kubernetes", reason="prefect-kubernetes renders the job (pip install -e '.[test]')")


@pytest.fixture(scope="module", autouse=True)
def prefect_api():
    """The worker resolves block and variable references through the Prefect API while it renders."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


def _deployment(name: str) -> dict:
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    return next(d for d in spec["deployments"] if d["name"] == name)


def _render(template: dict, job_variables: dict) -> dict:
    from prefect.client.schemas.objects import FlowRun
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    config = asyncio.run(KubernetesWorkerJobConfiguration.from_template_and_values(template, job_variables))
    config.prepare_for_flow_run(FlowRun(id=uuid.uuid4(), name="nightly-gpu-test", flow_id=uuid.uuid4()))
    return config.job_manifest


def _as_v1_job(manifest: dict):
    from kubernetes_asyncio.client import ApiClient, Configuration

    conf = Configuration()
    conf.client_side_validation = True  # required fields and enums are checked as the models are built

    async def build():
        async with ApiClient(conf) as api:
            return api._ApiClient__deserialize(manifest, "V1Job")

    return asyncio.run(build())


def test_gpu_job_template_renders_a_valid_kubernetes_job():
    template = json.loads((REPO / "deploy/k8s-gpu-job-template.json").read_text())
    job_variables = _deployment("nightly-gpu")["work_pool"]["job_variables"]
    jsonschema.validate(job_variables, template["variables"])  # what the server checks when the deployment is created

    manifest = _render(template, job_variables)
    text = json.dumps(manifest)
    assert not re.search(r"\{\{.*?\}\}", text), text  # every placeholder filled, keys included
    job = _as_v1_job(manifest)

    # prefect-kubernetes' worker refuses a template without these (its own default carries them)
    assert manifest["spec"]["template"]["spec"]["parallelism"] == manifest["spec"]["template"]["spec"]["completions"] == 1
    assert job.api_version == "batch/v1" and job.kind == "Job" and job.spec.backoff_limit == 0
    assert job.metadata.namespace == job_variables["namespace"]
    pod = job.spec.template.spec
    assert pod.restart_policy == "Never"
    assert pod.node_selector == job_variables["node_selector"] == {"nvidia.com/gpu.present": "true"}
    assert any(t.key == "nvidia.com/gpu" and t.effect == "NoSchedule" for t in pod.tolerations)
    (container,) = pod.containers
    assert container.image == job_variables["image"]
    assert str(container.resources.limits["nvidia.com/gpu"]) == str(job_variables["gpu_count"])
    assert container.resources.limits["memory"] == container.resources.requests["memory"]
    shm = next(v for v in pod.volumes if v.name == "dshm")
    assert shm.empty_dir.medium == "Memory"
    assert any(m.name == "dshm" and m.mount_path == "/dev/shm" for m in container.volume_mounts)
    env = {e.name: e.value for e in container.env}
    assert {k: env.get(k) for k in job_variables["env"]} == job_variables["env"]
    assert env.get("PREFECT__FLOW_RUN_ID")  # the worker tells the pod which flow run it executes
    assert container.args[:3] == ["prefect", "flow-run", "execute"]
    assert container.working_dir == _deployment("nightly-gpu")["parameters"]["repo_path"]


def test_node_selector_is_a_variable_a_pool_can_change():
    """Another cluster labels its GPU nodes differently: the pool or deployment sets the mapping."""
    template = json.loads((REPO / "deploy/k8s-gpu-job-template.json").read_text())
    variables = {**_deployment("nightly-gpu")["work_pool"]["job_variables"], "node_selector": {"accelerator": "h100"}}
    jsonschema.validate(variables, template["variables"])
    job = _as_v1_job(_render(template, variables))
    assert job.spec.template.spec.node_selector == {"accelerator": "h100"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**variables, "node_selector": "nvidia.com/gpu.present"}, template["variables"])
