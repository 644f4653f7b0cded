"""Host detection: the CPU model (system.py), the CPU frequency, memory and OS of the system
description (submission/system_json.py) and the frequency fallback of the host sampler (host.py),
each with its fallbacks. Nothing here depends on the host it runs on: /proc files are written in
tmp_path, psutil and platform are replaced."""

from __future__ import annotations

import subprocess
from collections import namedtuple

import pytest
from tinyharness import host, system
from tinyharness.submission import system_json

Freq = namedtuple("Freq", "current min max")  # psutil.cpu_freq()'s scpufreq


# -- the CPU model -----------------------------------------------------------------------------------
X86 = """processor\t: 0
vendor_id\t: GenuineIntel
model\t\t: 85
model name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz
cpu MHz\t\t: 2100.000

processor\t: 1
model name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz
"""
PI = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU part\t: 0xd08

Hardware\t: BCM2835
Revision\t: c03112
Model\t\t: Raspberry Pi 4 Model B Rev 1.2
"""
GRAVITON = """processor\t: 0
BogoMIPS\t: 243.75
CPU implementer\t: 0x41
CPU part\t: 0xd0c
"""


@pytest.mark.parametrize("text, expected", [
    (X86, "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz"),  # 'model' (a number) is not 'model name'
    (PI, "Raspberry Pi 4 Model B Rev 1.2"),  # no 'model name': the board's 'Model' before 'Hardware'
    ("Hardware\t: BCM2835\n", "BCM2835"),
    ("system type\t: MT7621\ncpu model\t: MIPS 1004Kc V2.15\n", "MIPS 1004Kc V2.15"),
    ("Processor\t: ARMv7 Processor rev 4 (v7l)\n", "ARMv7 Processor rev 4 (v7l)"),
])
def test_cpu_model_from_proc_cpuinfo(tmp_path, text, expected):
    (tmp_path / "cpuinfo").write_text(text)
    assert system.cpu_model(tmp_path / "cpuinfo") == expected


def test_cpu_model_without_a_name_in_cpuinfo_falls_back_to_platform(tmp_path, monkeypatch):
    (tmp_path / "cpuinfo").write_text(GRAVITON)  # arm64 servers name no model
    monkeypatch.setattr(system.platform, "system", lambda: "Linux")
    monkeypatch.setattr(system.platform, "processor", lambda: "")
    monkeypatch.setattr(system.platform, "machine", lambda: "aarch64")
    assert system.cpu_model(tmp_path / "cpuinfo") == "aarch64"
    monkeypatch.setattr(system.platform, "processor", lambda: "Intel64 Family 6 Model 158")  # Windows
    assert system.cpu_model(tmp_path / "absent") == "Intel64 Family 6 Model 158"


# Skylake-SP (AVX-512, no VNNI) and Cascade Lake (VNNI): the flags lines as Linux prints them
SKYLAKE_FLAGS = ("flags\t\t: fpu vme sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 bmi1 bmi2 "
                 "avx512f avx512dq avx512cd avx512bw avx512vl xsaveopt\n")
CASCADE_FLAGS = SKYLAKE_FLAGS.replace("avx512vl", "avx512vl avx512_vnni")
SAPPHIRE_FLAGS = CASCADE_FLAGS.replace("xsaveopt", "avx_vnni avx512_bf16 amx_bf16 amx_tile amx_int8")


@pytest.mark.parametrize("text, expected, int8_dot", [
    (X86 + SKYLAKE_FLAGS, ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl"],
     False),
    (CASCADE_FLAGS, ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                     "avx512_vnni"], True),
    (SAPPHIRE_FLAGS, ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                      "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"], True),
    (PI, ["asimd"], False),  # Cortex-A72: no dot product
    ("Features\t: fp asimd asimdhp asimddp sve i8mm bf16 sve2\n",
     ["asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2"], True),  # Neoverse V2
    (GRAVITON, None, None),  # no flags line: unknown, not "none"
])
def test_cpu_features_name_the_instructions_that_pick_kernels(tmp_path, text, expected, int8_dot):
    (tmp_path / "cpuinfo").write_text(text)
    features = system.cpu_features(tmp_path / "cpuinfo")
    assert features == expected
    assert system.has_int8_dot_product(features) is int8_dot


def test_cpu_features_are_unknown_without_proc_cpuinfo(tmp_path):
    assert system.cpu_features(tmp_path / "absent") is None
    assert system.has_int8_dot_product(None) is None


def test_cpu_model_on_macos_is_the_brand_string(tmp_path, monkeypatch):
    calls = []

    def sysctl(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout="Apple M2\n", stderr="")

    system._macos_brand.cache_clear()
    monkeypatch.setattr(system.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(system.subprocess, "run", sysctl)
    try:
        assert system.cpu_model(tmp_path / "absent") == "Apple M2"
        assert system.cpu_model(tmp_path / "absent") == "Apple M2"
        assert calls == [["sysctl", "-n", "machdep.cpu.brand_string"]]  # once: cached
        system._macos_brand.cache_clear()

        def broken(cmd, **kwargs):
            raise FileNotFoundError("sysctl")

        monkeypatch.setattr(system.subprocess, "run", broken)
        monkeypatch.setattr(system.platform, "processor", lambda: "arm")
        assert system.cpu_model(tmp_path / "absent") == "arm"
    finally:
        system._macos_brand.cache_clear()


def test_cpu_model_of_this_host_is_a_non_empty_string():
    assert isinstance(system.cpu_model(), str) and system.cpu_model()


# -- the system description: frequency, memory, OS ---------------------------------------------------
def fake_psutil(monkeypatch, cpu_freq=None, total=None, error=None):
    psutil = pytest.importorskip("psutil")

    def freq():
        if error:
            raise error
        return cpu_freq

    def memory():
        if error:
            raise error
        return namedtuple("Mem", "total")(total)

    monkeypatch.setattr(psutil, "cpu_freq", freq)
    monkeypatch.setattr(psutil, "virtual_memory", memory)


@pytest.mark.parametrize("freq, expected", [
    (Freq(2100.0, 800.0, 3900.0), "3.90 GHz (max)"),  # cpufreq present: the maximum
    (Freq(2100.0, 0.0, 0.0), "2.10 GHz (as reported by the OS)"),  # a VM: /proc/cpuinfo's cpu MHz
    (Freq(0.0, 0.0, 0.0), ""),
    (None, ""),  # psutil knows nothing (it returns None on some platforms)
])
def test_frequency_from_psutil(monkeypatch, freq, expected):
    fake_psutil(monkeypatch, cpu_freq=freq)
    assert system_json._frequency() == expected


@pytest.mark.parametrize("error", [NotImplementedError("no cpu_freq here"), FileNotFoundError("/sys"),
                                   RuntimeError("psutil bug")])
def test_detection_errors_are_unknown_not_failures(monkeypatch, error):
    fake_psutil(monkeypatch, error=error)
    assert system_json._frequency() == "" and system_json._memory() == ""
    assert host.psutil_cpu_mhz() is None


def test_without_psutil_detection_is_unknown(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_psutil(name, *args, **kwargs):
        if name == "psutil":
            raise ImportError("No module named 'psutil'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_psutil)
    assert system_json._frequency() == "" and system_json._memory() == ""
    assert host.psutil_cpu_mhz() is None


def test_memory_from_psutil(monkeypatch):
    fake_psutil(monkeypatch, total=16 * 2**30 + 2**29)
    assert system_json._memory() == "16.5 GiB system RAM"
    fake_psutil(monkeypatch, total=0)
    assert system_json._memory() == ""


def test_os_name_from_os_release(monkeypatch):
    monkeypatch.setattr(system_json.platform, "system", lambda: "Linux")
    monkeypatch.setattr(system_json.platform, "release", lambda: "6.1.0-18-amd64")
    monkeypatch.setattr(system_json.platform, "freedesktop_os_release",
                        lambda: {"NAME": "Debian GNU/Linux", "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)"})
    assert system_json._os_name() == "Debian GNU/Linux 12 (bookworm) (Linux 6.1.0-18-amd64)"
    monkeypatch.setattr(system_json.platform, "freedesktop_os_release", lambda: {"NAME": "Alpine"})
    assert system_json._os_name() == "Linux 6.1.0-18-amd64"  # no PRETTY_NAME: the kernel alone


def test_os_name_without_os_release(monkeypatch):
    def missing():
        raise OSError("Unable to read files /etc/os-release, /usr/lib/os-release")

    monkeypatch.setattr(system_json.platform, "freedesktop_os_release", missing)
    monkeypatch.setattr(system_json.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(system_json.platform, "release", lambda: "23.5.0")
    monkeypatch.setattr(system_json.platform, "mac_ver", lambda: ("14.5", ("", "", ""), "arm64"))
    assert system_json._os_name() == "macOS 14.5 (Darwin 23.5.0)"
    monkeypatch.setattr(system_json.platform, "system", lambda: "Windows")
    monkeypatch.setattr(system_json.platform, "release", lambda: "10")
    monkeypatch.setattr(system_json.platform, "mac_ver", lambda: ("", ("", "", ""), ""))
    assert system_json._os_name() == "Windows 10"


def test_description_of_this_host_fills_the_detected_fields():
    doc = system_json.describe()
    assert doc["Processor(s) Name"] == system.cpu_model()
    assert doc["Operating System"] == system_json._os_name()
    assert doc["Operating System"].endswith(f"{system_json.platform.system()} {system_json.platform.release()})") \
        or doc["Operating System"] == f"{system_json.platform.system()} {system_json.platform.release()}"
    assert doc["Processor memory type and capacity"].endswith("GiB system RAM")


# -- the host sampler's frequency ------------------------------------------------------------------
def test_sampler_falls_back_to_psutil_only_for_the_real_sysfs(tmp_path, monkeypatch):
    monkeypatch.setattr(host, "read_cpu_mhz", lambda cpu_dir=host.CPU_SYSFS: None)  # a VM: no cpufreq
    monkeypatch.setattr(host, "psutil_cpu_mhz", lambda: 2100.0)
    counters = dict(system_busy_s=lambda: 0.0, own_cpu_s=lambda: 0.0)
    sampler = host.HostSampler(**counters)  # the real /sys/devices/system/cpu
    sampler.start()
    sample = sampler.stop()
    assert (sample.cpu_mhz_before, sample.cpu_mhz_after) == (2100.0, 2100.0)
    sampler = host.HostSampler(cpu_dir=tmp_path, **counters)  # a folder given: no fallback
    sampler.start()
    assert sampler.stop().cpu_mhz_before is None
    sampler = host.HostSampler(cpu_dir=tmp_path, cpu_mhz_fallback=lambda: 1500.0, **counters)
    sampler.start()
    assert sampler.stop().cpu_mhz_after == 1500.0


def test_sysfs_wins_over_psutil(tmp_path):
    folder = tmp_path / "cpu0" / "cpufreq"
    folder.mkdir(parents=True)
    (folder / "scaling_cur_freq").write_text("3000000\n")
    sampler = host.HostSampler(cpu_dir=tmp_path, cpu_mhz_fallback=lambda: 1.0,
                               system_busy_s=lambda: 0.0, own_cpu_s=lambda: 0.0)
    sampler.start()
    assert sampler.stop().cpu_mhz_before == 3000.0


@pytest.mark.parametrize("freq, expected", [(Freq(2100.04, 0.0, 0.0), 2100.0), (Freq(0.0, 0.0, 0.0), None),
                                            (None, None)])
def test_psutil_cpu_mhz(monkeypatch, freq, expected):
    fake_psutil(monkeypatch, cpu_freq=freq)
    assert host.psutil_cpu_mhz() == expected
