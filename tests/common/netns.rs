//! Network namespaces a test makes itself: each held open by a sleeping `unshare --net`
//! process (so nothing is registered under /run/netns) and gone with it, the hosts joined by
//! veth pairs to a bridge in a namespace of its own. Needs root with `ip`, `unshare` and
//! `nsenter`.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` to its end; the error names it and carries its stderr.
pub fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Why namespace tests cannot run here: not root, or one of `tools` is not on the PATH.
pub fn missing_tool(tools: &[&str]) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    for tool in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("`{tool}` not found"));
        }
    }
    None
}

/// A network namespace held open by a sleeping `unshare --net` process, with `lo` up.
pub struct Netns {
    holder: Child,
}

impl Netns {
    /// `name` only labels errors.
    pub fn new(name: &str) -> Result<Netns, String> {
        let holder = Command::new("unshare")
            .args(["--net", "--", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("unshare: {e}"))?;
        let ns = Netns { holder };
        // Wait until the holder has actually switched namespaces.
        let own = std::fs::read_link("/proc/self/ns/net").ok();
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_link(ns.path()).ok() == own {
            if Instant::now() > deadline {
                return Err(format!("namespace {name} never appeared"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    pub fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.pid())
    }

    /// A command that runs `program` inside this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.path()))
            .arg("--")
            .arg(program);
        cmd
    }

    pub fn ip(&self, args: &[&str]) -> Result<(), String> {
        run(self.command("ip").args(args))
    }

    pub fn tc(&self, args: &[&str]) -> Result<(), String> {
        run(self.command("tc").args(args))
    }

    /// Loads an nftables `script` here (`nft -f -`).
    pub fn nft(&self, script: &str) -> Result<(), String> {
        let mut child = self
            .command("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("nft: {e}"))?;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        if !out.status.success() {
            return Err(format!(
                "nft failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A bridge `br0` in a namespace of its own, and the MTU of it and of every link attached.
pub struct Bridge {
    pub ns: Netns,
    mtu: String,
}

impl Bridge {
    pub fn new(mtu: u32) -> Result<Bridge, String> {
        let ns = Netns::new("bridge")?;
        let mtu = mtu.to_string();
        ns.ip(&["link", "add", "br0", "mtu", &mtu, "type", "bridge"])?;
        // No IGMP snooping: forward multicast to every port, with or without a querier.
        ns.ip(&[
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        ns.ip(&["link", "set", "br0", "up"])?;
        Ok(Bridge { ns, mtu })
    }

    /// veth `port` (bridge side) <-> `eth0` (inside `host`, holding `addr`/24).
    pub fn attach(&self, host: &Netns, port: &str, addr: &str) -> Result<(), String> {
        let (mtu, pid) = (self.mtu.as_str(), host.pid().to_string());
        self.ns.ip(&[
            "link", "add", port, "mtu", mtu, "type", "veth", "peer", "name", "eth0", "mtu", mtu,
            "netns", &pid,
        ])?;
        self.ns.ip(&["link", "set", port, "master", "br0"])?;
        self.ns.ip(&["link", "set", port, "up"])?;
        host.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
        host.ip(&["link", "set", "eth0", "up"])?;
        // Multicast leaves through eth0 even when a socket forgets IP_MULTICAST_IF.
        host.ip(&["route", "add", "224.0.0.0/4", "dev", "eth0"])?;
        Ok(())
    }
}
