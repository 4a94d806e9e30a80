"""The GAN loop's device settings: bf16, channels_last, compile, fused Adam, data kept on the GPU,
no host synchronisation per step, and resuming a checkpoint on CUDA.

The CUDA tests run only where a GPU is present (CI has none); the CPU tests check that the same
code paths run in float32 and bf16 on the CPU.
"""
import dataclasses
import io
import math
import warnings
from pathlib import Path

import pytest
import torch

from augment.acceleration import Acceleration, native_bf16
from augment.cyclegan import CycleGANConfig, as_float, on_device_if_it_fits, train_cyclegan, translate
from models.norms import InstanceNorm

TINY = CycleGANConfig(steps=4, batch_size=4, ngf=4, n_blocks=1, ndf=4, d_layers=1, pool_size=3, log_every=4, semantic_width=4,
                      semantic_batch_size=8)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _labeled_data(n=32, size=8):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    # 8-bit values, as prepared images are: they can live on the GPU as uint8
    source = (torch.randint(0, 256, (n, 1, size, size), generator=g).float() / 127.5 - 1).clamp(-1, 1)
    target = (torch.randint(0, 256, (n, 1, size, size), generator=g).float() / 127.5 - 1).clamp(-1, 1)
    return source, target, labels


def test_auto_takes_bf16_on_cpu_only_where_the_processor_computes_it_and_everything_on_cuda():
    on_cpu = Acceleration.choose("cpu")
    assert on_cpu == Acceleration(bf16=native_bf16("cpu"), fused_optimizer=True)
    assert not Acceleration.choose("cpu", precision="fp32").bf16
    assert Acceleration.choose("cpu", precision="bf16").bf16
    assert Acceleration.choose("cpu", compile=True).compile
    on_gpu = Acceleration.choose("cuda")
    assert on_gpu.bf16 and on_gpu.compile and on_gpu.fused_optimizer
    assert on_gpu.channels_last  # compiled: NHWC through Inductor's kernels too
    assert not Acceleration.choose("cuda", compile=False).channels_last  # eager: ATen's norms and pads are NCHW
    assert not Acceleration.choose("cuda", precision="fp32", compile=False).bf16
    with pytest.raises(ValueError, match="precision"):
        Acceleration.choose("cpu", precision="fp16")


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="reads the CPU flags Linux reports")
def test_native_bf16_follows_the_cpu_flags_linux_reports():
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags |= set(line.split(":", 1)[1].split())
    assert native_bf16("cpu") == bool(flags & {"avx512_bf16", "amx_tile", "amx_bf16"})


def test_bf16_and_channels_last_train_on_cpu():
    source, target, labels = _labeled_data()
    cfg = dataclasses.replace(TINY, conditional=True, lambda_semantic=1.0, semantic_threshold=1e9)
    nets, state = train_cyclegan(source, target, cfg, source_labels=labels, num_classes=2,
                                 accel=Acceleration(bf16=True, channels_last=True))
    assert all(math.isfinite(v) for v in state.history[-1].values())
    assert all(p.dtype == torch.float32 for p in nets.G_st.parameters())  # autocast: weights stay float32
    out = translate(nets.G_st, source[:3], labels[:3])
    assert out.dtype == torch.float32 and out.shape == (3, 1, 8, 8)


def test_a_compiled_channels_last_network_computes_what_the_eager_one_does_and_keeps_its_weights():
    # The generator's shape in small: reflection pads, instance norms, and a last convolution much
    # narrower than its input (the case Inductor's own heuristic leaves in NCHW).
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.ReflectionPad2d(1), torch.nn.Conv2d(3, 16, 3), torch.nn.InstanceNorm2d(16), torch.nn.ReLU(),
                              torch.nn.ReflectionPad2d(1), torch.nn.Conv2d(16, 3, 3), torch.nn.Tanh())
    x = torch.rand(2, 3, 12, 12) * 2 - 1
    eager = net(x).detach()
    accel = Acceleration(channels_last=True, compile=True)
    run = accel.place(net, torch.device("cpu"))
    assert run is not net and list(net.state_dict()) == ["1.weight", "1.bias", "5.weight", "5.bias"]
    out = run(accel.inputs(x))
    assert torch.allclose(out, eager, atol=1e-5)
    out.square().mean().backward()  # and trains: the gradients land in the module's own weights
    assert net[1].weight.grad is not None and torch.isfinite(net[1].weight.grad).all()


def test_a_compiled_generator_trains_at_a_second_image_size_in_the_same_process():
    """A second size in one process (a sweep in a notebook, the benchmark's two sizes, the test
    suite) recompiles. With Inductor's automatic dynamic shapes that recompile made symbolic sizes,
    and the channels_last, layout-forced compile of the generator failed on them ("cannot determine
    truth value of Relational"). Compiled for static shapes, each size gets its own graph."""
    from models.generators import ResnetGenerator

    torch.manual_seed(0)
    net = ResnetGenerator(3, 3, ngf=4, n_blocks=1)
    accel = Acceleration(channels_last=True, compile=True)
    run = accel.place(net, torch.device("cpu"))
    for size in (16, 12):
        x = torch.rand(2, 3, size, size) * 2 - 1
        net.zero_grad()
        out = run(accel.inputs(x))
        assert out.shape == (2, 3, size, size) and torch.allclose(out, net(x), atol=1e-5)
        out.square().mean().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_instance_norm_keeps_nhwc_and_computes_what_atens_does(dtype):
    torch.manual_seed(0)
    x = torch.randn(3, 8, 10, 12).to(dtype)
    norm = InstanceNorm(8)
    nchw = x.clone().requires_grad_()
    nhwc = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    reference = torch.nn.InstanceNorm2d(8)(nchw)
    out = norm(nhwc)
    assert out.dtype == dtype and out.is_contiguous(memory_format=torch.channels_last)
    tol = 1e-5 if dtype == torch.float32 else 2e-2  # bf16: one rounding step at |x| up to 4
    assert (out.float() - reference.float()).abs().max() < tol
    g = torch.randn_like(reference)
    reference.backward(g)
    out.backward(g.contiguous(memory_format=torch.channels_last))
    assert nhwc.grad.is_contiguous(memory_format=torch.channels_last)
    assert (nhwc.grad.float() - nchw.grad.float()).abs().max() < tol
    assert torch.equal(norm(x), torch.nn.InstanceNorm2d(8)(x))  # NCHW: ATen's kernel, bit for bit
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        norm(torch.randn(2, 8, 1, 1).contiguous(memory_format=torch.channels_last))  # refused as by ATen


def test_compiled_channels_last_generator_hands_every_convolution_backward_an_nhwc_gradient():
    """Traced for torch.compile, the backward of a channels_last generator passes each convolution
    its output's gradient in NHWC. With ATen's instance norm 9 of these 10 were NCHW, and on a GPU
    cuDNN copied each one back (41 of 258 ms per step at 256 px; benchmarks/RESULTS.md)."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    from models.generators import ResnetGenerator

    grads = []

    def backward_graph(gm, example_inputs):
        grads.extend(n.args[0].meta["val"] for n in gm.graph.nodes if n.target == torch.ops.aten.convolution_backward.default)
        return make_boxed_func(gm.forward)

    torch._dynamo.reset()
    net = ResnetGenerator(3, 3, ngf=8, n_blocks=2).to(memory_format=torch.channels_last)
    run = torch.compile(net, backend=aot_autograd(fw_compiler=lambda gm, _: make_boxed_func(gm.forward), bw_compiler=backward_graph))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = run(torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last))
    out.float().sum().backward()
    assert len(grads) == 10  # 8 convolutions and 2 transposed ones
    assert all(g.is_contiguous(memory_format=torch.channels_last) for g in grads), [g.stride() for g in grads]


def test_in_channels_last_every_convolution_of_a_gan_step_gets_an_nhwc_input():
    """A convolution handed an NCHW input in a channels_last network converts it first (on a GPU, a
    copy kernel per call). The image pool hands back NCHW once it holds images, so the
    discriminators' real-and-pooled pass used to get one."""
    from torch.nn.modules.module import register_module_forward_pre_hook

    layouts = []

    def record(module, args):
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            layouts.append((type(module).__name__, tuple(args[0].shape), args[0].is_contiguous(memory_format=torch.channels_last)))

    cfg = dataclasses.replace(TINY, steps=3, d_layers=2, pool_size=50)
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    handle = register_module_forward_pre_hook(record)
    try:
        train_cyclegan(x, x.flip(0), cfg, accel=Acceleration(channels_last=True))
    finally:
        handle.remove()
    assert len(layouts) > 50 and [entry for entry in layouts if not entry[2]] == []


def test_translation_follows_the_runtime_precision():
    source, target, labels = _labeled_data()
    nets, _ = train_cyclegan(source, target, TINY, accel=Acceleration(fused_optimizer=True))
    with torch.inference_mode():
        exact = nets.G_st(source)  # float32, no autocast
    fp32 = translate(nets.G_st, source, precision="fp32")
    bf16 = translate(nets.G_st, source, precision="bf16")
    assert torch.allclose(fp32, exact, atol=1e-6)
    assert not torch.allclose(bf16, exact, atol=1e-6)  # bf16 rounding: the setting took effect
    assert torch.allclose(bf16, exact, atol=0.1)
    with pytest.raises(ValueError, match="precision"):
        translate(nets.G_st, source, precision="half")


def test_the_classifier_follows_the_runtime_precision_in_training_predicting_and_adabn():
    """runtime.precision reached the GANs and translation only: the classifiers took bf16 on CUDA
    whatever it said. Each convolution's output dtype shows what ran: float32 under auto and fp32 on
    the CPU, bf16 autocast under bf16; on CUDA, auto is bf16 and fp32 float32."""
    from augment.classify import ClassifierConfig, predict, renormalized, train_classifier
    from augment.mixing import LabeledImages, MixedBatches

    assert Acceleration.for_classifier("cuda").bf16 and not Acceleration.for_classifier("cuda", "fp32").bf16
    assert not Acceleration.for_classifier("cpu").bf16 and Acceleration.for_classifier("cpu", "bf16").bf16
    with pytest.raises(ValueError, match="precision"):
        Acceleration.for_classifier("cpu", "half")
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 1, 8, 8), generator=g, dtype=torch.uint8)
    data = LabeledImages(images, torch.arange(16) % 2)
    cfg = ClassifierConfig(width=4, steps=2, batch_size=8, log_every=2)
    for precision, want in (("auto", torch.float32), ("fp32", torch.float32), ("bf16", torch.bfloat16)):
        seen = []
        hook = torch.nn.modules.module.register_module_forward_hook(
            lambda m, args, out: seen.append(out.dtype) if isinstance(m, torch.nn.Conv2d) else None)
        try:
            model = train_classifier(MixedBatches(parts={"source": (data, 1.0)}, batch_size=8, seed=0), cfg, in_channels=1,
                                     num_classes=2, seed=0, precision=precision)
            trained, seen[:] = set(seen), []
            predict(model, images, precision=precision)
            predicted, seen[:] = set(seen), []
            renormalized(model, images, precision=precision)
            adapted = set(seen)
        finally:
            hook.remove()
        assert trained == predicted == adapted == {want}, (precision, trained, predicted, adapted)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a CUDA device")
def test_runtime_device_cuda_without_one_is_a_params_error_naming_the_key():
    """Every stage's run_stage prints a ParamsError as one line and exits 2, without a traceback."""
    from pipelines.config import ParamsError
    from pipelines.runtime import select_device

    threads = torch.get_num_threads()
    try:
        with pytest.raises(ParamsError, match="runtime.device is 'cuda' but this machine has no CUDA device"):
            select_device("cuda", threads=1)
        assert select_device("auto", threads=1).type == "cpu"
    finally:
        torch.set_num_threads(threads)  # the rest of this worker's tests keep theirs


def test_runtime_params_choose_the_acceleration():
    from pipelines.config import parse_params

    r = parse_params({"runtime": {"precision": "fp32", "compile": False}}).runtime
    assert Acceleration.choose("cuda", precision=r.precision, compile=r.compile) == Acceleration(fused_optimizer=True)  # uncompiled: NCHW
    assert Acceleration.choose("cpu", precision=r.precision, compile=r.compile) == Acceleration(fused_optimizer=True)
    with pytest.raises(ValueError, match="runtime.precision"):
        parse_params({"runtime": {"precision": "half"}})


@cuda
def test_prepared_images_live_on_the_gpu_as_uint8_when_they_came_from_8_bit_files():
    source, _, _ = _labeled_data()
    dev = torch.device("cuda")
    stored = on_device_if_it_fits(source, dev)
    assert stored.device.type == "cuda" and stored.dtype == torch.uint8
    assert torch.allclose(as_float(stored).cpu(), source, atol=1e-6)  # a GPU divides by 127.5 as x * (1 / 127.5)
    odd = torch.rand(4, 1, 8, 8) * 2 - 1  # not 8-bit values: kept as float
    assert on_device_if_it_fits(odd, dev).dtype == torch.float32


@cuda
def test_cuda_loop_synchronises_with_the_host_only_to_log():
    """The number of host synchronisations must not grow with the number of steps."""
    source, target, labels = _labeled_data()
    accel = Acceleration(bf16=True, channels_last=True, fused_optimizer=True)

    def syncs(steps: int) -> int:
        cfg = dataclasses.replace(TINY, steps=steps, log_every=steps, conditional=True, lambda_semantic=1.0, semantic_threshold=1e9)
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                train_cyclegan(source, target, cfg, source_labels=labels, num_classes=2, device="cuda", accel=accel)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in seen)

    syncs(2)  # cuDNN autotuning and lazy initialisation happen once
    assert syncs(4) == syncs(12)


@cuda
def test_cuda_resume_from_a_cpu_checkpoint_puts_every_tensor_on_the_gpu():
    """A checkpoint saved, then read with map_location='cpu' and weights_only=True as train_gan does,
    resumes on the GPU once the pool hands back old fakes (it used to crash mixing devices)."""
    source, target, labels = _labeled_data()
    cfg = dataclasses.replace(TINY, steps=10, log_every=1, conditional=True, lambda_semantic=1.0, semantic_threshold=1e9, pool_size=2)
    saved = {}

    def keep(step, state):
        buf = io.BytesIO()
        torch.save(state, buf)
        saved[step] = buf.getvalue()

    train_cyclegan(source, target, cfg, source_labels=labels, num_classes=2, device="cuda",
                   checkpoint=keep, checkpoint_every=5)
    blob = torch.load(io.BytesIO(saved[5]), map_location="cpu", weights_only=True)
    assert blob["pool_t"]["images"] and blob["pool_t"]["images"][0].device.type == "cpu"
    nets, state = train_cyclegan(source, target, cfg, source_labels=labels, num_classes=2, device="cuda", resume=blob)
    assert state.step == 10 and all(math.isfinite(v) for v in state.history[-1].values())
    assert all(p.device.type == "cuda" for p in nets.G_st.parameters())


@pytest.mark.parametrize("visible", [None, ""])
def test_the_flow_tells_a_cuda_device_as_torch_does_without_importing_torch(visible):
    """The flow picks one stage at a time on a GPU; asking torch cost its process a 2 s import on
    every run. Its own probe must agree with torch, here and on a GPU (benchmarks/gpu_speed.sh runs
    this file there), also with CUDA_VISIBLE_DEVICES="" hiding the devices."""
    import os
    import subprocess
    import sys

    code = ("import sys; from pipelines.flows import default_jobs; from pipelines.cuda_probe import cuda_available; "
            "seen = cuda_available(); jobs = default_jobs('auto'); assert 'torch' not in sys.modules, 'torch imported'; "
            "import torch; print(seen, torch.cuda.is_available(), jobs)")
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen, torch_says, jobs = proc.stdout.split()
    assert seen == torch_says, proc.stdout
    assert (jobs == "1") == (torch_says == "True"), proc.stdout
