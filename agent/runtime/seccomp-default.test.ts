import { describe, expect, it } from 'vitest';
import { DEFAULT_CAPABILITIES } from './oci-spec.js';
import { goArch, seccompProfile, type OciSeccomp } from './seccomp-default.js';

/** Names with an unconditional SCMP_ACT_ALLOW rule (no argument filter). */
function allowed(profile: OciSeccomp): Set<string> {
  return new Set(profile.syscalls.filter((rule) => rule.action === 'SCMP_ACT_ALLOW' && rule.args === undefined).flatMap((rule) => rule.names));
}

/** Every name any rule mentions, whatever its action or arguments. */
function mentioned(profile: OciSeccomp): Set<string> {
  return new Set(profile.syscalls.flatMap((rule) => rule.names));
}

describe('seccompProfile', () => {
  const standard = seccompProfile(DEFAULT_CAPABILITIES, 'amd64');

  it('seccomp profile denies by default with EPERM on all x86 ABIs', () => {
    expect(standard.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(standard.defaultErrnoRet).toBe(1);
    expect(standard.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    expect(seccompProfile(DEFAULT_CAPABILITIES, 'arm64').architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  });

  it('seccomp profile allows ordinary syscalls and the arch-specific ones of the architecture', () => {
    const names = allowed(standard);
    for (const name of ['read', 'write', 'openat', 'execve', 'futex', 'epoll_wait', 'ptrace', 'chroot', 'arch_prctl', 'modify_ldt']) expect(names).toContain(name);
    expect(names).not.toContain('cacheflush');
    const arm = allowed(seccompProfile(DEFAULT_CAPABILITIES, 'arm64'));
    expect(arm).toContain('cacheflush');
    expect(arm).not.toContain('arch_prctl');
  });

  it('seccomp profile blocks privileged syscalls without their capabilities', () => {
    const names = mentioned(standard);
    for (const name of ['mount', 'umount2', 'unshare', 'setns', 'init_module', 'finit_module', 'delete_module', 'kexec_load', 'reboot', 'bpf', 'acct', 'keyctl', 'add_key', 'clock_settime', 'open_by_handle_at']) {
      expect(names, name).not.toContain(name);
    }
    expect(allowed(seccompProfile(DEFAULT_CAPABILITIES.filter((cap) => cap !== 'CAP_SYS_CHROOT'), 'amd64'))).not.toContain('chroot');
  });

  it('seccomp profile filters clone flags, clone3 and personality as Docker does', () => {
    const clone = standard.syscalls.filter((rule) => rule.names.includes('clone'));
    expect(clone).toEqual([{ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] }]);
    expect(standard.syscalls.filter((rule) => rule.names.includes('clone3'))).toEqual([{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }]);
    const personality = standard.syscalls.filter((rule) => rule.names.includes('personality'));
    expect(personality.map((rule) => rule.args?.[0]?.value)).toEqual([0, 8, 0x20000, 0x20008, 0xffffffff]);
    const socket = standard.syscalls.find((rule) => rule.names.includes('socket'));
    expect(socket?.args).toEqual([{ index: 0, value: 40, op: 'SCMP_CMP_NE' }]);
  });

  it('seccomp profile follows added capabilities', () => {
    const admin = seccompProfile([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'], 'amd64');
    const names = allowed(admin);
    for (const name of ['mount', 'umount2', 'unshare', 'setns', 'clone', 'clone3', 'bpf']) expect(names).toContain(name);
    expect(admin.syscalls.some((rule) => rule.action === 'SCMP_ACT_ERRNO')).toBe(false);
    expect(admin.syscalls.some((rule) => rule.names.includes('clone') && rule.args !== undefined)).toBe(false);
    expect(names).not.toContain('init_module');
    expect(allowed(seccompProfile([...DEFAULT_CAPABILITIES, 'CAP_SYS_MODULE'], 'amd64'))).toContain('init_module');
    expect(allowed(seccompProfile(['CAP_SYS_BOOT'], 'amd64'))).toContain('reboot');
    expect(allowed(seccompProfile(['CAP_SYS_PTRACE'], 'amd64'))).toContain('kcmp');
  });

  it('seccomp profile names each syscall at most once per rule and maps node arches', () => {
    for (const rule of standard.syscalls) expect(new Set(rule.names).size).toBe(rule.names.length);
    expect(goArch('x64')).toBe('amd64');
    expect(goArch('arm64')).toBe('arm64');
  });
});
