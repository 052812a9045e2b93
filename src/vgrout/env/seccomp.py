"""The system-call filter every sample runs under: a classic-BPF seccomp program, built here.

No dependency: the program is a few dozen `struct sock_filter` instructions that the sandbox
worker installs on itself (`prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)`, after
`PR_SET_NO_NEW_PRIVS`) before it forks any sample, so every sample inherits it in both sandbox
kinds. Why these calls: none is needed to solve a coding problem, and each is a known route to
the kernel's less-hardened surface (io_uring, BPF, user namespaces, keyrings, perf) or to
another process (ptrace, process_vm_*). Denied calls fail with EPERM (the program sees an
ordinary `OSError` and fails its test); `clone3` fails with ENOSYS so libc falls back to
`clone`, whose flags the filter can read and whose namespace flags it denies; a system call
from a foreign ABI (x32, i386 `int 0x80`) kills the process. See docs/env.md.
"""

from __future__ import annotations

import errno
import platform
import struct

# Denied everywhere (name -> number per architecture). Numbers from the kernel's uapi headers
# (asm/unistd_64.h for x86_64, asm-generic/unistd.h for aarch64).
DENIED: dict[str, tuple[int | None, int | None]] = {  # name: (x86_64, aarch64)
    "io_uring_setup": (425, 425), "io_uring_enter": (426, 426), "io_uring_register": (427, 427),
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "pidfd_getfd": (438, 438), "kcmp": (312, 272),
    "mount": (165, 40), "umount2": (166, 39), "pivot_root": (155, 41), "chroot": (161, 51),
    "open_tree": (428, 428), "move_mount": (429, 429), "fsopen": (430, 430), "fsconfig": (431, 431),
    "fsmount": (432, 432), "fspick": (433, 433), "mount_setattr": (442, 442),
    "unshare": (272, 97), "setns": (308, 268),
    "bpf": (321, 280), "perf_event_open": (298, 241), "userfaultfd": (323, 282),
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218),
    "kexec_load": (246, 104), "kexec_file_load": (320, 294),
    "init_module": (175, 105), "finit_module": (313, 273), "delete_module": (176, 106),
    "reboot": (169, 142), "swapon": (167, 224), "swapoff": (168, 225), "acct": (163, 89),
    "quotactl": (179, 60), "quotactl_fd": (443, 443), "syslog": (103, 116),
    "settimeofday": (164, 170), "clock_settime": (227, 112), "clock_adjtime": (305, 266),
    "adjtimex": (159, 171), "sethostname": (170, 161), "setdomainname": (171, 162),
    "iopl": (172, None), "ioperm": (173, None), "name_to_handle_at": (303, 264),
    "open_by_handle_at": (304, 265), "personality": (135, 92), "vhangup": (153, 58),
    "fanotify_init": (300, 262), "lookup_dcookie": (212, 18), "memfd_secret": (447, 447),
    "uselib": (134, None), "_sysctl": (156, None), "create_module": (174, None),
    "get_kernel_syms": (177, None), "query_module": (178, None), "nfsservctl": (180, 42),
}
CLONE = {"x86_64": 56, "aarch64": 220}
CLONE3 = 435
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME
CLONE_NS_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000

RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000
_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16  # struct seccomp_data (arg0's low word: little endian)


def machine() -> str:
    """This host's architecture in the filter's names; raises where we have no syscall table."""
    m = platform.machine().lower()
    m = {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)
    if m not in AUDIT_ARCH:
        raise RuntimeError(
            f"vgrout sandbox: no seccomp syscall table for architecture {platform.machine()!r} "
            f"(have {', '.join(AUDIT_ARCH)}); add its numbers to vgrout/env/seccomp.py"
        )
    return m


def denied_numbers(arch: str) -> dict[str, int]:
    """The denied calls that exist on `arch`, by name."""
    col = 0 if arch == "x86_64" else 1
    return {name: nums[col] for name, nums in DENIED.items() if nums[col] is not None}


def build_filter(arch: str | None = None) -> bytes:
    """The BPF program as packed `struct sock_filter` records (8 bytes each)."""
    arch = arch or machine()
    if arch not in AUDIT_ARCH:
        raise ValueError(f"no seccomp syscall table for {arch!r}; known: {', '.join(AUDIT_ARCH)}")
    deny = sorted(set(denied_numbers(arch).values()))
    prog: list[tuple[int, int, int, int]] = []  # (code, jt, jf, k); jumps patched below
    # Returns sit at the end: ALLOW, EPERM, ENOSYS, KILL. A jump names its target by label.
    body: list[tuple[int, str | int, str | int, int]] = [
        (_LD_W_ABS, 0, 0, _OFF_ARCH),
        (_JEQ, 0, "kill", AUDIT_ARCH[arch]),
        (_LD_W_ABS, 0, 0, _OFF_NR),
    ]
    if arch == "x86_64":
        body.append((_JGE, "kill", 0, X32_SYSCALL_BIT))
    body += [(_JEQ, "eperm", 0, nr) for nr in deny]
    body += [(_JEQ, "enosys", 0, CLONE3), (_JEQ, 0, "allow", CLONE[arch]),
             (_LD_W_ABS, 0, 0, _OFF_ARG0), (_JSET, "eperm", "allow", CLONE_NS_FLAGS)]
    labels = {"allow": len(body), "eperm": len(body) + 1, "enosys": len(body) + 2, "kill": len(body) + 3}
    for i, (code, jt, jf, k) in enumerate(body):
        jt = labels[jt] - i - 1 if isinstance(jt, str) else jt
        jf = labels[jf] - i - 1 if isinstance(jf, str) else jf
        if not (0 <= jt <= 255 and 0 <= jf <= 255):
            raise AssertionError("seccomp jump out of range")
        prog.append((code, jt, jf, k))
    prog += [(_RET, 0, 0, RET_ALLOW), (_RET, 0, 0, RET_ERRNO | errno.EPERM),
             (_RET, 0, 0, RET_ERRNO | errno.ENOSYS), (_RET, 0, 0, RET_KILL_PROCESS)]
    return b"".join(struct.pack("=HBBI", *ins) for ins in prog)
