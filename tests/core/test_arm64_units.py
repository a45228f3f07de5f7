"""arm64 as a first-class arch, without booting: the arch record and what
reads it (recipes, QEMU command line, tools), scenario skip_arch, the matrix
over both arches and the model's profile from the recipe."""
from pathlib import Path

import pytest
from helpers import ROOT, rvharness

from harness.commands import matrix
from harness.core.arch import ARCHES, ARM64, RISCV64
from harness.core.errors import InputError
from harness.core.hostcmd import TOOL_PACKAGES
from harness.guest.machine import MachineSpec
from harness.kernel.recipe import load_recipe
from harness.model import ARM64 as ARM64_PROFILE
from harness.model import ARM64_PSEUDO_NMI
from harness.model import RISCV64 as RISCV64_PROFILE
from harness.model.features import BACKTRACE_ROW, Features
from harness.scenario.parse import load as load_scenario

KERNELS = ROOT / "kernels"


def test_arm64_recipes_share_one_build_and_differ_in_patch_or_cmdline() -> None:
    default = load_recipe(KERNELS / "arm64" / "default.yaml")
    rev = load_recipe(KERNELS / "arm64" / "revert-pseudo-nmi-backtrace.yaml")
    off = load_recipe(KERNELS / "arm64" / "without-pseudo-nmi.yaml")
    assert default.arch is ARM64 and rev.arch is ARM64 and off.arch is ARM64
    assert default.name == "arm64-default"
    assert [p.name for p in default.fragments] == ["arm64-ipi.config"]
    assert default.cmdline == ("irqchip.gicv3_pseudo_nmi=1",)
    assert [p.name for p in rev.patches] == ["revert-pseudo-nmi-backtrace.patch"]
    assert rev.cmdline == default.cmdline
    # A child's parameters come after the parent's; the last one wins.
    assert off.cmdline == ("irqchip.gicv3_pseudo_nmi=1", "irqchip.gicv3_pseudo_nmi=0")
    assert off.patches == default.patches and off.fragments == default.fragments
    # riscv64 recipes have no parameters of their own
    assert load_recipe(KERNELS / "default.yaml").cmdline == ()


@pytest.mark.parametrize("text,line,fragment", [
    ("source: {debian: x}\narch: arm64\ncmdline: ['a b']\n", 3, "must be one kernel parameter"),
    ("source: {debian: x}\ncmdline: [1]\n", 2, "expected a string"),
    ("source: {debian: x}\narch: aarch64\n", 2, "unknown arch 'aarch64' (expected one of: riscv64, arm64)"),
])
def test_recipe_cmdline_errors(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    p = tmp_path / "r.yaml"
    p.write_text(text)
    with pytest.raises(InputError) as err:
        load_recipe(p)
    assert fragment in str(err.value) and err.value.line == line, str(err.value)


def test_arm64_qemu_command_line() -> None:
    spec = MachineSpec(ARM64, Path("Image"), Path("initrd.cpio"), cpus=4,
                       cmdline=("irqchip.gicv3_pseudo_nmi=1", "foo=1"))
    argv = spec.argv(Path("/tmp/q.sock"))
    assert argv[0] == "qemu-system-aarch64"
    assert argv[argv.index("-M") + 1] == "virt,gic-version=3"
    assert argv[argv.index("-cpu") + 1] == "max"
    assert "-bios" not in argv            # QEMU boots the Image itself and implements PSCI
    assert spec.kernel_cmdline() == ("console=ttyAMA0 earlycon=pl011,0x9000000 kgdboc=ttyAMA0 "
                                     "irqchip.gicv3_pseudo_nmi=1 foo=1")
    rv = MachineSpec(RISCV64, Path("Image"), Path("i"), cpus=2).argv(Path("/tmp/q.sock"))
    assert rv[rv.index("-bios") + 1] == "default" and "-cpu" not in rv
    assert "earlycon=sbi kgdboc=ttyS0" in rv[rv.index("-append") + 1]


def test_arm64_image_check(tmp_path: Path) -> None:
    # The 64-byte arm64 Image header (Documentation/arch/arm64/booting.rst).
    img = tmp_path / "Image"
    img.write_bytes(b"\0" * 56 + b"ARM\x64" + b"\0" * 4)
    ARM64.check_image(img)
    with pytest.raises(InputError, match="not a riscv64 kernel Image"):
        RISCV64.check_image(img)
    with pytest.raises(InputError, match="not a arm64 kernel Image"):
        ARM64.check_image(_riscv(tmp_path))


def _riscv(tmp_path: Path) -> Path:
    p = tmp_path / "rv"
    p.write_bytes(b"\0" * 48 + b"RISCV\x00\x00\x00RSC\x05")
    return p


def test_every_arch_names_its_host_packages() -> None:
    for a in ARCHES.values():
        assert TOOL_PACKAGES[a.qemu] == a.qemu_package
        assert TOOL_PACKAGES[a.cross_compile + "gcc"] == a.gcc_package
        assert TOOL_PACKAGES[a.addr2line] == a.binutils_package
    script = (ROOT / "scripts" / "install-host-packages").read_text()
    for a in ARCHES.values():
        for pkg in (a.qemu_package, a.gcc_package, a.binutils_package):
            assert f"\n    {pkg}" in script, pkg


def test_skip_arch(tmp_path: Path) -> None:
    scn = load_scenario(ROOT / "scenarios" / "arm64" / "pseudo-nmi-backtrace-stuck-cpu.yaml")
    assert "RISC-V has no NMI" in scn.skip_arch["riscv64"] and "arm64" not in scn.skip_arch
    p = tmp_path / "s.yaml"
    p.write_text("skip_arch: {sparc: nope}\nsteps: [{snapshot: a}]\n")
    with pytest.raises(InputError, match="unknown arch 'sparc'"):
        load_scenario(p)
    p.write_text("skip_arch: {arm64: ''}\nsteps: [{snapshot: a}]\n")
    with pytest.raises(InputError, match="give the reason"):
        load_scenario(p)
    p.write_text("skip_arch: {arm64: a, riscv64: b}\nsteps: [{snapshot: a}]\n")
    with pytest.raises(InputError, match="skipped on every arch"):
        load_scenario(p)


def test_matrix_kernels_and_wanted_verdicts() -> None:
    names = [load_recipe(p).name for p in matrix.recipe_paths(KERNELS)]
    assert names[0] == "default" and "arm64-default" in names
    assert names[names.index("arm64-default"):] == [
        "arm64-default", "arm64-revert-pseudo-nmi-backtrace", "arm64-without-pseudo-nmi"]
    assert all(load_recipe(p).arch is ARM64 for p in matrix.recipe_paths(KERNELS, ["arm64"]))
    assert matrix.reverted_commit("arm64-revert-pseudo-nmi-backtrace") == "pseudo-nmi-backtrace"
    assert matrix.reverted_commit("arm64-without-pseudo-nmi") == "pseudo-nmi"
    assert matrix.reverted_commit("arm64-default") is None
    scn = load_scenario(ROOT / "scenarios" / "arm64" / "pseudo-nmi-backtrace-stuck-cpu.yaml")
    assert matrix.wanted(scn, "arm64-default")[0] == "pass"
    assert matrix.wanted(scn, "arm64-revert-pseudo-nmi-backtrace")[0] == "fail"
    assert matrix.wanted(scn, "arm64-without-pseudo-nmi")[0] == "fail"
    # The model must disagree with the revert (it predicts the seed), but it
    # is told the cmdline baseline's difference and must agree with it.
    assert matrix.model_wanted(scn, "arm64-revert-pseudo-nmi-backtrace") == "fail"
    assert matrix.model_wanted(scn, "arm64-without-pseudo-nmi") == "pass"
    # names match exactly, commit ids by prefix
    rv = load_scenario(ROOT / "scenarios" / "backtrace-ipi-stuck-cpu.yaml")
    assert matrix.wanted(rv, "revert-f15c21a3de1b")[0] == "fail"
    assert matrix.wanted(rv, "revert-f15c21a")[0] == "fail"
    assert matrix.wanted(rv, "arm64-without-pseudo-nmi")[0] == "pass"
    assert matrix.wanted(scn, "arm64-without-pseudo-nmi-x")[0] == "pass"


def test_model_profile_comes_from_the_recipe() -> None:
    """Features.reference: arch and command line of the recipe, plus what it
    declares absent; never what the kernel under test prints."""
    harness_cmdline = ["console=ttyAMA0", "kgdboc=ttyAMA0"]
    on = Features.reference(None, arch="arm64", cmdline=harness_cmdline + ["irqchip.gicv3_pseudo_nmi=1"])
    assert on.arch is ARM64_PSEUDO_NMI and on.backtrace_ipi and on.kgdb_roundup_ipi
    assert on.sbi_ipi_early is None
    off = Features.reference(None, arch="arm64", cmdline=harness_cmdline + [
        "irqchip.gicv3_pseudo_nmi=1", "irqchip.gicv3_pseudo_nmi=0"])
    assert off.arch is ARM64_PROFILE and off.backtrace_ipi
    rev = Features.reference(None, arch="arm64", cmdline=harness_cmdline + ["irqchip.gicv3_pseudo_nmi=1"],
                             without=["pseudo-nmi-backtrace"])
    assert rev.arch is ARM64_PROFILE and not rev.backtrace_ipi and BACKTRACE_ROW not in rev.ipi_rows()
    # a config without the option cannot have pseudo-NMIs, whatever the command line says
    assert Features.reference({"CONFIG_ARM64": "y"}, arch="arm64",
                              cmdline=["irqchip.gicv3_pseudo_nmi=1"]).arch is ARM64_PROFILE
    assert Features.reference(None, cmdline=["softlockup_all_cpu_backtrace=1"]).softlockup_all_cpu_backtrace
    assert not Features.reference(None, cmdline=[]).hardlockup_all_cpu_backtrace
    rv = Features.reference(None, cmdline=["kgdboc=ttyS0"], without=["f15c21a3de1b"])
    assert rv.arch is RISCV64_PROFILE and not rv.backtrace_ipi and rv.kgdb_roundup_ipi
    # the recipes: the baselines declare nothing (the model must disagree with
    # the revert); the cmdline baseline's difference is in its cmdline
    assert load_recipe(KERNELS / "arm64" / "revert-pseudo-nmi-backtrace.yaml").model_without == ()


def test_explain_side_by_side() -> None:
    proc = rvharness("explain", "scenarios/backtrace-ipi.yaml")
    assert proc.returncode == 0, proc.stderr
    head = proc.stdout.splitlines()[1]
    assert "== riscv64: default ==" in head and "| == arm64: arm64-default ==" in head
    assert "arch riscv64," in proc.stdout and "arch arm64-pseudo-nmi," in proc.stdout
    stuck = rvharness("explain", "scenarios/arm64/pseudo-nmi-backtrace-stuck-cpu.yaml")
    assert stuck.returncode == 0, stuck.stderr
    assert "== arm64: arm64-default ==" in stuck.stdout and "riscv64" not in stuck.stdout.splitlines()[1]
    off = rvharness("explain", "scenarios/arm64/pseudo-nmi-backtrace-stuck-cpu.yaml",
                    "--without", "pseudo-nmi")
    assert off.returncode == 0, off.stderr
    assert "arch arm64," in off.stdout
    bad = rvharness("explain", "scenarios/backtrace-ipi.yaml", "--without", "nonsense")
    assert bad.returncode == 2 and "--without nonsense: expected" in bad.stderr
    skipped = rvharness("explain", "scenarios/arm64/pseudo-nmi-kdb-stuck-cpu.yaml", "--arch", "riscv64")
    assert skipped.returncode == 2 and "not run on riscv64: RISC-V has no NMI" in skipped.stderr


DATA = ROOT / "tests" / "data"


def test_arm64_info_registers_from_qemu() -> None:
    """`info registers -a` as QEMU 7.2's aarch64 target printed it (captured
    with the VM stopped, 2 vCPUs, arm64-default)."""
    from harness.guest.info_registers import parse_info_registers
    from harness.guest.vcpu_probe import classify
    cpus = parse_info_registers((DATA / "arm64" / "info-registers-a-2cpus.txt").read_text())
    assert [c.index for c in cpus] == [0, 1]
    assert cpus[0].pc == 0xffff8000801ecb38 and cpus[0]["x30"] == 0xffff80008006d100
    assert cpus[1]["sp"] == 0xfff0000000923e10 and cpus[1]["X00"] == 0xc0
    assert "q00" not in cpus[0].regs          # vector registers (hi:lo) are not taken
    s = classify(cpus[0].pc, cpus[0].regs.get(ARM64.return_reg), None, ARM64)
    assert s.location == "unknown" and s.ra == 0xffff80008006d100   # kernel address, no map given


def test_arm64_cpu_to_vcpu_map_from_the_boot_log() -> None:
    from harness.guest.vcpu_probe import cpu_vcpus_arm64
    boot = (DATA / "arm64" / "boot-4cpus.log").read_text()
    assert cpu_vcpus_arm64(boot) == {0: 0, 1: 1, 2: 2, 3: 3}
    # MPIDR 0x100 is Aff1 1, Aff0 0: QEMU virt's vCPU 8
    assert cpu_vcpus_arm64("Booting Linux on physical CPU 0x0000000000\n"
                           "CPU1: Booted secondary processor 0x0000000100 [0x000f0510]\n") == {0: 0, 1: 8}
    assert cpu_vcpus_arm64("no arm64 boot here") == {}


def test_arm64_interrupts_rows_in_model_order() -> None:
    from harness.model.features import ARM64_IPI_ROWS
    from harness.parsers import interrupts
    snap = interrupts.parse((DATA / "interrupts" / "arm64-default-4cpus.txt").read_text())
    assert snap.cpus == [0, 1, 2, 3]
    assert snap.ipi_names() == list(ARM64_IPI_ROWS)
    assert snap.row("Function call interrupts") is not None
