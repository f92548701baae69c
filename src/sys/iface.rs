//! What the system says about a local interface: its MTU and whether it carries multicast.

/// An interface's MTU and multicast flag, as the system reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceFlags {
    pub mtu: u32,
    /// `IFF_MULTICAST` is set.
    pub multicast: bool,
    /// `IFF_UP` is set.
    pub up: bool,
}

/// The interface's MTU and flags; `None` where the system cannot tell (or off Linux).
#[cfg(target_os = "linux")]
pub fn interface_flags(name: &str) -> Option<InterfaceFlags> {
    use std::os::fd::AsRawFd;
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return None;
    }
    let socket = std::net::UdpSocket::bind("0.0.0.0:0")
        .or_else(|_| std::net::UdpSocket::bind("[::]:0"))
        .ok()?;
    // SAFETY: an all-zero ifreq is a valid value (a NUL name and a zero union).
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(bytes) {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: the socket is open, `request` is a live ifreq with a NUL-terminated name, and
    // these requests only write into its union.
    let mtu = unsafe {
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFMTU as _, &raw mut request) != 0 {
            return None;
        }
        request.ifr_ifru.ifru_mtu
    };
    // SAFETY: as above.
    let flags = unsafe {
        if libc::ioctl(
            socket.as_raw_fd(),
            libc::SIOCGIFFLAGS as _,
            &raw mut request,
        ) != 0
        {
            return None;
        }
        i32::from(request.ifr_ifru.ifru_flags)
    };
    Some(InterfaceFlags {
        mtu: u32::try_from(mtu).ok()?,
        multicast: flags & libc::IFF_MULTICAST != 0,
        up: flags & libc::IFF_UP != 0,
    })
}

#[cfg(not(target_os = "linux"))]
pub fn interface_flags(_name: &str) -> Option<InterfaceFlags> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_an_mtu_and_unknown_names_have_nothing() {
        let lo = interface_flags("lo").expect("lo exists");
        assert!(lo.mtu >= 1280, "{lo:?}");
        assert!(interface_flags("no-such-if0").is_none());
        assert!(interface_flags("").is_none());
    }
}
