//! The Win32 functions mig-loader calls, declared by hand (a handful of `extern "system"`
//! functions costs less than a bindings crate), each behind a safe wrapper that returns
//! `std::io::Result`. This is the only module of the loader with `unsafe` code.
#![allow(unsafe_code)]

use std::ffi::{c_void, OsStr, OsString};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

type Bool = i32;

#[link(name = "kernel32")]
extern "system" {
    fn GetComputerNameExW(name_type: i32, buffer: *mut u16, size: *mut u32) -> Bool;
    fn MoveFileExW(from: *const u16, to: *const u16, flags: u32) -> Bool;
    fn LocalFree(mem: *mut c_void) -> *mut c_void;
}

#[link(name = "advapi32")]
extern "system" {
    fn RegGetValueW(
        key: isize,
        subkey: *const u16,
        value: *const u16,
        flags: u32,
        kind: *mut u32,
        data: *mut c_void,
        len: *mut u32,
    ) -> i32;
    fn ConvertStringSecurityDescriptorToSecurityDescriptorW(
        sddl: *const u16,
        revision: u32,
        sd: *mut *mut c_void,
        len: *mut u32,
    ) -> Bool;
    #[cfg(test)]
    fn ConvertSecurityDescriptorToStringSecurityDescriptorW(
        sd: *mut c_void,
        revision: u32,
        info: u32,
        sddl: *mut *mut u16,
        len: *mut u32,
    ) -> Bool;
    fn GetSecurityDescriptorDacl(
        sd: *mut c_void,
        present: *mut Bool,
        dacl: *mut *mut c_void,
        defaulted: *mut Bool,
    ) -> Bool;
    fn GetSecurityDescriptorOwner(
        sd: *mut c_void,
        owner: *mut *mut c_void,
        defaulted: *mut Bool,
    ) -> Bool;
    fn StartServiceCtrlDispatcherW(table: *const ServiceTableEntry) -> Bool;
    fn RegisterServiceCtrlHandlerExW(
        name: *const u16,
        handler: unsafe extern "system" fn(u32, u32, *mut c_void, *mut c_void) -> u32,
        context: *mut c_void,
    ) -> isize;
    fn SetServiceStatus(handle: isize, status: *const RawServiceStatus) -> Bool;
    fn OpenSCManagerW(machine: *const u16, database: *const u16, access: u32) -> isize;
    fn OpenServiceW(manager: isize, name: *const u16, access: u32) -> isize;
    fn QueryServiceStatus(service: isize, status: *mut RawServiceStatus) -> Bool;
    fn StartServiceW(service: isize, argc: u32, argv: *const *const u16) -> Bool;
    fn CloseServiceHandle(handle: isize) -> Bool;
    fn SetNamedSecurityInfoW(
        name: *const u16,
        object_type: u32,
        info: u32,
        owner: *mut c_void,
        group: *mut c_void,
        dacl: *mut c_void,
        sacl: *mut c_void,
    ) -> u32;
}

#[link(name = "iphlpapi")]
extern "system" {
    fn GetAdaptersAddresses(
        family: u32,
        flags: u32,
        reserved: *mut c_void,
        addresses: *mut c_void,
        size: *mut u32,
    ) -> u32;
}

#[link(name = "bcrypt")]
extern "system" {
    fn BCryptGenRandom(alg: *mut c_void, buf: *mut u8, len: u32, flags: u32) -> i32;
}

const COMPUTER_NAME_DNS_FULLY_QUALIFIED: i32 = 3;
const MOVEFILE_REPLACE_EXISTING: u32 = 0x1;
const MOVEFILE_WRITE_THROUGH: u32 = 0x8;
// HKEY_LOCAL_MACHINE is the sign-extended 32-bit value 0x80000002.
const HKEY_LOCAL_MACHINE: isize = 0x8000_0002_u32 as i32 as isize;
const RRF_RT_REG_SZ: u32 = 0x2;
const SDDL_REVISION_1: u32 = 1;
const SE_FILE_OBJECT: u32 = 1;
const OWNER_SECURITY_INFORMATION: u32 = 0x1;
const DACL_SECURITY_INFORMATION: u32 = 0x4;
const PROTECTED_DACL_SECURITY_INFORMATION: u32 = 0x8000_0000;
const BCRYPT_USE_SYSTEM_PREFERRED_RNG: u32 = 0x2;

/// `s` as a NUL-terminated UTF-16 string; an interior NUL is refused rather than cut at.
fn wide(s: &OsStr) -> io::Result<Vec<u16>> {
    let mut w: Vec<u16> = s.encode_wide().collect();
    if w.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{s:?} contains a NUL character"),
        ));
    }
    w.push(0);
    Ok(w)
}

/// The UTF-16 text of `buf` up to its first NUL.
fn from_wide(buf: &[u16]) -> String {
    let end = buf.iter().position(|c| *c == 0).unwrap_or(buf.len());
    OsString::from_wide(&buf[..end])
        .to_string_lossy()
        .into_owned()
}

/// The machine's fully qualified DNS name (`GetComputerNameExW`).
pub fn computer_name_fqdn() -> io::Result<String> {
    // DNS names are at most 255 characters.
    let mut buf = [0u16; 256];
    let mut len = buf.len() as u32;
    // SAFETY: `buf` is writable for `len` UTF-16 units; the call writes at most that many.
    let ok = unsafe {
        GetComputerNameExW(
            COMPUTER_NAME_DNS_FULLY_QUALIFIED,
            buf.as_mut_ptr(),
            &mut len,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let len = (len as usize).min(buf.len());
    Ok(from_wide(&buf[..len]))
}

/// A `REG_SZ` value under `HKEY_LOCAL_MACHINE\<subkey>`.
pub fn registry_string(subkey: &str, value: &str) -> io::Result<String> {
    let subkey = wide(OsStr::new(subkey))?;
    let value = wide(OsStr::new(value))?;
    // Registry strings the loader reads are short; a longer one is an error, not a truncation.
    let mut buf = [0u16; 512];
    let mut len = std::mem::size_of_val(&buf) as u32;
    // SAFETY: the strings are NUL-terminated; `buf` is writable for `len` bytes.
    let status = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            subkey.as_ptr(),
            value.as_ptr(),
            RRF_RT_REG_SZ,
            std::ptr::null_mut(),
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if status != 0 {
        return Err(io::Error::from_raw_os_error(status));
    }
    Ok(from_wide(&buf))
}

/// Fills `buf` from the system's CSPRNG (`BCryptGenRandom`).
pub fn random(buf: &mut [u8]) -> io::Result<()> {
    let len = u32::try_from(buf.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "random buffer too large"))?;
    // SAFETY: `buf` is writable for `len` bytes; a null algorithm handle with
    // BCRYPT_USE_SYSTEM_PREFERRED_RNG is the documented way to use the system RNG.
    let status = unsafe {
        BCryptGenRandom(
            std::ptr::null_mut(),
            buf.as_mut_ptr(),
            len,
            BCRYPT_USE_SYSTEM_PREFERRED_RNG,
        )
    };
    if status != 0 {
        return Err(io::Error::other(format!(
            "BCryptGenRandom failed with NTSTATUS {status:#x}"
        )));
    }
    Ok(())
}

/// Renames `from` over `to`, returning only once the change is on disk (`MOVEFILE_WRITE_THROUGH`:
/// Windows has no directory fsync).
pub fn rename_durably(from: &Path, to: &Path) -> io::Result<()> {
    let f = wide(from.as_os_str())?;
    let t = wide(to.as_os_str())?;
    // SAFETY: both strings are NUL-terminated.
    let ok = unsafe {
        MoveFileExW(
            f.as_ptr(),
            t.as_ptr(),
            MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A security descriptor parsed from SDDL, freed on drop.
struct Descriptor(*mut c_void);

impl Drop for Descriptor {
    fn drop(&mut self) {
        // SAFETY: the pointer came from a function whose result LocalFree releases.
        unsafe { LocalFree(self.0) };
    }
}

fn descriptor(sddl: &str) -> io::Result<Descriptor> {
    let s = wide(OsStr::new(sddl))?;
    let mut sd = std::ptr::null_mut();
    // SAFETY: `s` is NUL-terminated; on success `sd` receives a LocalAlloc'd descriptor.
    let ok = unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            s.as_ptr(),
            SDDL_REVISION_1,
            &mut sd,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Descriptor(sd))
}

/// Sets the owner and a protected DACL on `path` from `sddl` (`O:…D:P…`): the ACEs of the parent
/// stop applying, and inheritable ACEs reach the existing children of a directory.
pub fn set_owner_and_protected_dacl(path: &Path, sddl: &str) -> io::Result<()> {
    let sd = descriptor(sddl)?;
    let name = wide(path.as_os_str())?;
    let mut present = 0;
    let mut defaulted = 0;
    let mut dacl = std::ptr::null_mut();
    let mut owner = std::ptr::null_mut();
    // SAFETY: `sd.0` is a valid descriptor; the out pointers point into it and live as long.
    let ok = unsafe {
        GetSecurityDescriptorDacl(sd.0, &mut present, &mut dacl, &mut defaulted) != 0
            && GetSecurityDescriptorOwner(sd.0, &mut owner, &mut defaulted) != 0
    };
    if !ok {
        return Err(io::Error::last_os_error());
    }
    if present == 0 || dacl.is_null() || owner.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("security descriptor {sddl:?} lacks an owner or a DACL"),
        ));
    }
    // SAFETY: `name` is NUL-terminated; `owner` and `dacl` point into `sd`, alive until return.
    let status = unsafe {
        SetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION
                | DACL_SECURITY_INFORMATION
                | PROTECTED_DACL_SECURITY_INFORMATION,
            owner,
            std::ptr::null_mut(),
            dacl,
            std::ptr::null_mut(),
        )
    };
    if status != 0 {
        return Err(io::Error::from_raw_os_error(status as i32));
    }
    Ok(())
}

/// `sddl` parsed by Windows and printed back (owner and DACL): how Windows reads it.
#[cfg(test)]
pub fn reparsed(sddl: &str) -> io::Result<String> {
    let sd = descriptor(sddl)?;
    let mut text = std::ptr::null_mut();
    let mut len = 0u32;
    // SAFETY: `sd.0` is valid; on success `text` is a LocalAlloc'd string of `len` units.
    let ok = unsafe {
        ConvertSecurityDescriptorToStringSecurityDescriptorW(
            sd.0,
            SDDL_REVISION_1,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            &mut text,
            &mut len,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let text = Descriptor(text.cast());
    // SAFETY: the string is `len` UTF-16 units long and lives until `text` drops.
    let units = unsafe { std::slice::from_raw_parts(text.0.cast::<u16>(), len as usize) };
    Ok(from_wide(units))
}

const AF_UNSPEC: u32 = 0;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 23;
const GAA_FLAG_SKIP_ANYCAST_MULTICAST_DNS: u32 = 0x2 | 0x4 | 0x8;
const ERROR_BUFFER_OVERFLOW: u32 = 111;
// Offsets in IP_ADAPTER_ADDRESSES_LH and IP_ADAPTER_UNICAST_ADDRESS_LH (x86_64).
const ADAPTER_NEXT: usize = 8;
const ADAPTER_FIRST_UNICAST: usize = 24;
const UNICAST_LENGTH: usize = 0;
const UNICAST_NEXT: usize = 8;
const UNICAST_SOCKADDR: usize = 16;
const UNICAST_PREFIX_LENGTH: usize = 56;

/// Every unicast address of every adapter with its on-link prefix length
/// (`GetAdaptersAddresses`).
pub fn unicast_addresses() -> io::Result<Vec<(IpAddr, u8)>> {
    let mut size: u32 = 16 * 1024;
    // The list can grow between the sizing call and the next one: a few tries.
    for _ in 0..4 {
        // u64 elements: the structures Windows writes need 8-byte alignment.
        let mut buf = vec![0u64; (size as usize).div_ceil(8)];
        let mut len = u32::try_from(buf.len() * 8).unwrap_or(u32::MAX);
        // SAFETY: `buf` is writable for `len` bytes.
        let status = unsafe {
            GetAdaptersAddresses(
                AF_UNSPEC,
                GAA_FLAG_SKIP_ANYCAST_MULTICAST_DNS,
                std::ptr::null_mut(),
                buf.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if status == ERROR_BUFFER_OVERFLOW {
            size = len;
            continue;
        }
        if status != 0 {
            return Err(io::Error::from_raw_os_error(status as i32));
        }
        let mut out = Vec::new();
        // SAFETY: on success `buf` holds linked lists of the structures whose offsets are named
        // above; every pointer in them is null or points into `buf`, alive for this loop.
        unsafe {
            let read_ptr = |p: *const u8, at: usize| p.add(at).cast::<*const u8>().read();
            let mut adapter: *const u8 = buf.as_ptr().cast();
            while !adapter.is_null() {
                let mut ua = read_ptr(adapter, ADAPTER_FIRST_UNICAST);
                while !ua.is_null() {
                    let length = ua.add(UNICAST_LENGTH).cast::<u32>().read();
                    let sa = read_ptr(ua, UNICAST_SOCKADDR);
                    if length as usize > UNICAST_PREFIX_LENGTH && !sa.is_null() {
                        let prefix = ua.add(UNICAST_PREFIX_LENGTH).read();
                        match sa.cast::<u16>().read() {
                            AF_INET => {
                                let a = sa.add(4).cast::<[u8; 4]>().read();
                                out.push((IpAddr::V4(Ipv4Addr::from(a)), prefix));
                            }
                            AF_INET6 => {
                                let a = sa.add(8).cast::<[u8; 16]>().read();
                                out.push((IpAddr::V6(Ipv6Addr::from(a)), prefix));
                            }
                            _ => {}
                        }
                    }
                    ua = read_ptr(ua, UNICAST_NEXT);
                }
                adapter = read_ptr(adapter, ADAPTER_NEXT);
            }
        }
        return Ok(out);
    }
    Err(io::Error::other("the adapter list kept growing"))
}

/// `SERVICE_TABLE_ENTRYW`.
#[repr(C)]
struct ServiceTableEntry {
    name: *const u16,
    main: Option<unsafe extern "system" fn(u32, *mut *mut u16)>,
}

/// `SERVICE_STATUS`.
#[repr(C)]
#[derive(Default)]
struct RawServiceStatus {
    service_type: u32,
    current_state: u32,
    controls_accepted: u32,
    win32_exit_code: u32,
    service_specific_exit_code: u32,
    check_point: u32,
    wait_hint: u32,
}

const SERVICE_WIN32_OWN_PROCESS: u32 = 0x10;
const SERVICE_ACCEPT_STOP: u32 = 0x1;
const SERVICE_ACCEPT_SHUTDOWN: u32 = 0x4;
const SERVICE_CONTROL_STOP: u32 = 1;
const SERVICE_CONTROL_INTERROGATE: u32 = 4;
const SERVICE_CONTROL_SHUTDOWN: u32 = 5;
const ERROR_CALL_NOT_IMPLEMENTED: u32 = 120;
const SC_MANAGER_CONNECT: u32 = 0x1;
const SERVICE_QUERY_STATUS: u32 = 0x4;
const SERVICE_START: u32 = 0x10;

/// A service's state (`SERVICE_STOPPED` … `SERVICE_RUNNING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    Stopped = 1,
    StopPending = 3,
    Running = 4,
}

/// What `ServiceMain` runs, set once by [`run_service_dispatcher`].
static SERVICE_MAIN: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>> = std::sync::OnceLock::new();
/// What the control handler calls on a stop or shutdown request, set once by
/// [`register_service_handler`].
static ON_STOP: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>> = std::sync::OnceLock::new();

unsafe extern "system" fn service_main(_argc: u32, _argv: *mut *mut u16) {
    if let Some(main) = SERVICE_MAIN.get() {
        main();
    }
}

unsafe extern "system" fn service_handler(
    control: u32,
    _event_type: u32,
    _event_data: *mut c_void,
    _context: *mut c_void,
) -> u32 {
    match control {
        SERVICE_CONTROL_STOP | SERVICE_CONTROL_SHUTDOWN => {
            if let Some(stop) = ON_STOP.get() {
                stop();
            }
            0
        }
        SERVICE_CONTROL_INTERROGATE => 0,
        _ => ERROR_CALL_NOT_IMPLEMENTED,
    }
}

/// Connects this process to the service control manager as the service `name` and runs `main` as
/// its `ServiceMain` (on a thread of the dispatcher); returns when the service has stopped. Fails
/// with `ERROR_FAILED_SERVICE_CONTROLLER_CONNECT` (1063) when the process was not started by the
/// service control manager.
pub fn run_service_dispatcher(
    name: &str,
    main: impl Fn() + Send + Sync + 'static,
) -> io::Result<()> {
    if SERVICE_MAIN.set(Box::new(main)).is_err() {
        return Err(io::Error::other(
            "the service dispatcher runs once per process",
        ));
    }
    let name = wide(OsStr::new(name))?;
    let table = [
        ServiceTableEntry {
            name: name.as_ptr(),
            main: Some(service_main),
        },
        ServiceTableEntry {
            name: std::ptr::null(),
            main: None,
        },
    ];
    // SAFETY: the table ends with a null entry; `name` outlives the call, which returns only
    // after every service of the table has stopped.
    if unsafe { StartServiceCtrlDispatcherW(table.as_ptr()) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The handle through which a running service reports its state.
pub struct StatusHandle(isize);

/// Registers the control handler of the service `name` (from its `ServiceMain`): a stop or
/// shutdown request calls `on_stop`.
pub fn register_service_handler(
    name: &str,
    on_stop: impl Fn() + Send + Sync + 'static,
) -> io::Result<StatusHandle> {
    if ON_STOP.set(Box::new(on_stop)).is_err() {
        return Err(io::Error::other(
            "the service handler is registered once per process",
        ));
    }
    let name = wide(OsStr::new(name))?;
    // SAFETY: `name` is NUL-terminated; the handler is a function that lives for the process.
    let h = unsafe {
        RegisterServiceCtrlHandlerExW(name.as_ptr(), service_handler, std::ptr::null_mut())
    };
    if h == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(StatusHandle(h))
}

impl StatusHandle {
    /// Reports `state` to the service control manager; a pending state carries a checkpoint that
    /// grows while work goes on, and the time to wait for the next one. `exit_code` is the Win32
    /// error a stopped service ends with (0: none).
    pub fn report(
        &self,
        state: ServiceState,
        check_point: u32,
        wait_hint_ms: u32,
        exit_code: u32,
    ) -> io::Result<()> {
        let controls_accepted = match state {
            ServiceState::Running => SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN,
            _ => 0,
        };
        let status = RawServiceStatus {
            service_type: SERVICE_WIN32_OWN_PROCESS,
            current_state: state as u32,
            controls_accepted,
            win32_exit_code: exit_code,
            service_specific_exit_code: 0,
            check_point,
            wait_hint: wait_hint_ms,
        };
        // SAFETY: the handle came from RegisterServiceCtrlHandlerExW; `status` is a valid struct.
        if unsafe { SetServiceStatus(self.0, &status) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// A handle of the service control manager, closed on drop.
struct ScHandle(isize);

impl Drop for ScHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from OpenSCManagerW or OpenServiceW and is closed once.
        unsafe { CloseServiceHandle(self.0) };
    }
}

/// The installed service `name`, opened with `access`.
fn open_service(name: &str, access: u32) -> io::Result<(ScHandle, ScHandle)> {
    let name = wide(OsStr::new(name))?;
    // SAFETY: null machine and database: the local service control manager's active database.
    let manager = unsafe { OpenSCManagerW(std::ptr::null(), std::ptr::null(), SC_MANAGER_CONNECT) };
    if manager == 0 {
        return Err(io::Error::last_os_error());
    }
    let manager = ScHandle(manager);
    // SAFETY: `manager` is open; `name` is NUL-terminated.
    let service = unsafe { OpenServiceW(manager.0, name.as_ptr(), access) };
    if service == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((manager, ScHandle(service)))
}

/// The current state of the installed service `name`, as a `SERVICE_*` state number.
pub fn service_state(name: &str) -> io::Result<u32> {
    let (_manager, service) = open_service(name, SERVICE_QUERY_STATUS)?;
    let mut status = RawServiceStatus::default();
    // SAFETY: `service` is open with SERVICE_QUERY_STATUS; `status` is writable.
    if unsafe { QueryServiceStatus(service.0, &mut status) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(status.current_state)
}

/// Starts the installed service `name` (no arguments beyond those it was installed with).
pub fn start_service(name: &str) -> io::Result<()> {
    let (_manager, service) = open_service(name, SERVICE_START)?;
    // SAFETY: `service` is open with SERVICE_START; no arguments.
    if unsafe { StartServiceW(service.0, 0, std::ptr::null()) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
