/* ProcessPrng for wine 8 (Debian 12), which lacks bcryptprimitives.dll: Rust's standard library
 * for Windows (1.78 and later) imports it, as Windows 10 and later provide it. Installed only into
 * the throwaway wine prefix of the tests (Makefile: wine-prefix), never shipped. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom, advapi32 */

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
