/*
 * Test-only stand-in for Windows' bcryptprimitives.dll, for running warden.exe under
 * Wine 8, which lacks it. Rust's standard library imports ProcessPrng from this DLL to
 * seed its hash maps and random numbers; without it the .exe does not even start.
 *
 * ProcessPrng fills the buffer from RtlGenRandom (advapi32's SystemFunction036), which
 * Wine does provide. Real Windows (10 and later) ships the real DLL: never ship this.
 *
 * Built by .ci/windows:
 *   x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll bcryptprimitives.c \
 *     bcryptprimitives.def -ladvapi32
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* RtlGenRandom takes a 32-bit length: fill large buffers in pieces. */
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
