/*
 * Stand-in bcryptprimitives.dll for running the x86_64-pc-windows-gnu build under Wine 8
 * (Debian 12). Rust's std (>= 1.78) imports ProcessPrng from bcryptprimitives.dll, which Wine
 * only ships from 8.13 on; without it every .exe stops at load time. This DLL exports
 * ProcessPrng on top of RtlGenRandom (advapi32!SystemFunction036), which Wine 8 has.
 * Built by .ci/run with:  x86_64-w64-mingw32-gcc -shared -O2 -s -o bcryptprimitives.dll \
 *                          bcryptprimitives.c -ladvapi32
 * CI-only: never shipped with wdsmc.exe (real Windows 10+ has the genuine DLL).
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom */

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
	while (length > 0) {
		ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
		if (!SystemFunction036(data, chunk))
			return FALSE;
		data += chunk;
		length -= chunk;
	}
	return TRUE;
}
