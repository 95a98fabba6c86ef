//! The raw ABI glue: pointers, lengths and the one import. The only `unsafe` of a plugin
//! lives here, behind the exports that [`crate::functions!`] generates.
#![allow(unsafe_code)]

use crate::{Input, Reply};

/// Packs a pointer and a length as the ABI returns them: `(ptr << 32) | len`.
pub fn pack(ptr: u32, len: u32) -> i64 {
    ((u64::from(ptr) << 32) | u64::from(len)) as i64
}

/// The inverse of [`pack`].
pub fn unpack(packed: i64) -> (u32, u32) {
    let v = packed as u64;
    ((v >> 32) as u32, v as u32)
}

/// Hands `bytes` to the host: they stay allocated until the instance is dropped, which
/// the host does after every evaluation.
pub fn leak(bytes: Vec<u8>) -> i64 {
    let b: &'static mut [u8] = Box::leak(bytes.into_boxed_slice());
    pack(b.as_ptr() as usize as u32, b.len() as u32)
}

/// `mig_alloc`: `len` writable bytes for the host (leaked, see [`leak`]).
pub fn alloc(len: i32) -> i32 {
    let len = usize::try_from(len).unwrap_or(0);
    let b: &'static mut [u8] = Box::leak(vec![0u8; len].into_boxed_slice());
    b.as_mut_ptr() as usize as i32
}

/// `mig_invoke`: decode the input, run `handler`, return the packed output.
pub fn invoke(ptr: i32, len: i32, handler: impl FnOnce(Input) -> Reply) -> i64 {
    let bytes = guest_bytes(ptr as u32, len as u32);
    let reply = match Input::parse(bytes) {
        Ok(input) => handler(input),
        Err(e) => Reply::error(e),
    };
    leak(reply.to_json().into_bytes())
}

/// The bytes the host wrote into this instance's memory (after a `mig_alloc` it asked for).
fn guest_bytes(ptr: u32, len: u32) -> &'static [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: the host obtained `ptr` from `mig_alloc(len)` (or from our own `leak`) and
    // wrote `len` bytes there; that allocation is never freed.
    unsafe { core::slice::from_raw_parts(ptr as usize as *const u8, len as usize) }
}

#[cfg(target_arch = "wasm32")]
mod host {
    #[link(wasm_import_module = "mig")]
    extern "C" {
        /// Runs a function of another plugin; see the crate documentation.
        pub fn call(ptr: i32, len: i32) -> i64;
    }
}

/// Sends `request` to the host's `mig.call` and returns the answer's bytes.
#[cfg(target_arch = "wasm32")]
pub fn host_call(request: &[u8]) -> Result<Vec<u8>, String> {
    // SAFETY: `mig.call` only reads `request` and returns memory it obtained from our
    // `mig_alloc`.
    let packed = unsafe { host::call(request.as_ptr() as usize as i32, request.len() as i32) };
    let (ptr, len) = unpack(packed);
    Ok(guest_bytes(ptr, len).to_vec())
}

/// Off wasm32 there is no host.
#[cfg(not(target_arch = "wasm32"))]
pub fn host_call(_request: &[u8]) -> Result<Vec<u8>, String> {
    Err("mig.call is only available inside the mig-api sandbox".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips_full_u32_range() {
        for (p, l) in [(0, 0), (1, 2), (u32::MAX, u32::MAX), (0x8000_0000, 7)] {
            assert_eq!(unpack(pack(p, l)), (p, l));
        }
    }
}
