//! Test hosts: network namespaces on one bridge, each a host with its own address and
//! network stack, that Open MPI launches onto as it would onto machines over ssh. For the
//! several-hosts tests and benchmark: create N hosts, run a job on them, cut and restore a
//! host's link, and tear everything down when dropped (also when a test fails, and at the
//! next creation for hosts a killed test process left behind).
//!
//! It must never touch an address or interface it did not create: each set of hosts gets
//! its own /24 in 198.18.0.0/15 (reserved for benchmark networks) and names that carry
//! the creating process's id. Needs root (`ip netns`) and iproute2.
//!
//! A network namespace alone shares the host name and `/dev/shm` with every other, and
//! Open MPI names its shared-memory segments by host name: two "hosts" then map the same
//! segment and crash (any MPI program does, not only fogkit). So each host's processes
//! also get their own host name and `/dev/shm` (a UTS and a mount namespace, made by the
//! launch agent). Process ids and the rest of the file system stay shared.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// N test hosts on a bridge of their own.
pub struct Hosts {
    /// The namespaces, one per host.
    names: Vec<String>,
    /// The bridge-side end of each host's veth pair (cut to lose the host).
    links: Vec<String>,
    addrs: Vec<String>,
    bridge: String,
    subnet: String,
    dir: PathBuf,
}

static CREATED: AtomicU32 = AtomicU32::new(0);

/// Runs `ip ARGS`; an error says which command failed and why.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip (iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ip_output(args: &[&str]) -> String {
    Command::new("ip")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Whether this process may create namespaces (root) and `ip` is there.
pub fn available() -> Result<(), String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        return Err("test hosts need root (network namespaces)".into());
    }
    Command::new("ip")
        .arg("-V")
        .output()
        .map(|_| ())
        .map_err(|e| format!("test hosts need iproute2's ip: {e}"))
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Kills every process inside namespace `ns` (its hosts' orted and ranks).
fn kill_all_in(ns: &str) {
    for pid in ip_output(&["netns", "pids", ns]).split_whitespace() {
        let _ = Command::new("kill").args(["-9", pid]).status();
    }
}

/// Removes what test processes that no longer run left behind.
fn sweep_leftovers() {
    for line in ip_output(&["netns", "list"]).lines() {
        let ns = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = ns.strip_prefix("fogkit-") else {
            continue;
        };
        let pid: Option<u32> = rest.split('-').next().and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| !alive(p)) {
            kill_all_in(ns);
            let _ = ip(&["netns", "del", ns]);
        }
    }
    for line in ip_output(&["-o", "link", "show"]).lines() {
        // "7: fb1a2b_0: <...": our bridges are fb<pid hex>_<n>.
        let Some(name) = line.split(": ").nth(1) else {
            continue;
        };
        let name = name.split('@').next().unwrap_or(name);
        let Some(rest) = name.strip_prefix("fb") else {
            continue;
        };
        let pid = rest
            .split('_')
            .next()
            .and_then(|h| u32::from_str_radix(h, 16).ok());
        if pid.is_some_and(|p| !alive(p)) {
            let _ = ip(&["link", "del", name]);
        }
    }
}

impl Hosts {
    /// Creates `n` hosts named by their addresses (`addr(i)`), each reachable from the
    /// others and from this namespace over its veth link.
    pub fn create(n: usize) -> Result<Hosts, String> {
        available()?;
        sweep_leftovers();
        let pid = std::process::id();
        let c = CREATED.fetch_add(1, Ordering::Relaxed);
        let s = (pid as usize * 7 + c as usize * 37) % 512;
        let net = format!("198.{}.{}", 18 + s / 256, s % 256);
        let dir = std::env::temp_dir().join(format!("fogkit-hosts-{pid}-{c}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut h = Hosts {
            names: Vec::new(),
            links: Vec::new(),
            addrs: Vec::new(),
            bridge: format!("fb{pid:x}_{c:x}"),
            subnet: format!("{net}.0/24"),
            dir,
        };
        // From here on, Drop removes whatever was made.
        ip(&["link", "add", &h.bridge, "type", "bridge"])?;
        ip(&["addr", "add", &format!("{net}.1/24"), "dev", &h.bridge])?;
        ip(&["link", "set", &h.bridge, "up"])?;
        for i in 0..n {
            let ns = format!("fogkit-{pid}-{c}-{i}");
            let link = format!("fv{pid:x}_{c:x}_{i:x}");
            let addr = format!("{net}.{}", 11 + i);
            ip(&["netns", "add", &ns])?;
            h.names.push(ns.clone());
            ip(&[
                "link", "add", &link, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            h.links.push(link.clone());
            ip(&["link", "set", &link, "master", &h.bridge, "up"])?;
            // IPv4 only: no address that waits for duplicate detection.
            let _ = Command::new("ip")
                .args(["netns", "exec", &ns, "sysctl", "-q", "-w"])
                .arg("net.ipv6.conf.all.disable_ipv6=1")
                .status();
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            h.addrs.push(addr);
        }
        h.write_agent()?;
        Ok(h)
    }

    /// The launch agent Open MPI runs instead of ssh: `AGENT [options] HOST COMMAND...`
    /// runs COMMAND inside HOST's namespace, under HOST's own host name and `/dev/shm`.
    fn write_agent(&self) -> Result<(), String> {
        let mut cases = String::new();
        for (i, (a, ns)) in self.addrs.iter().zip(&self.names).enumerate() {
            cases.push_str(&format!("    {a}) ns={ns}; name={} ;;\n", self.hostname(i)));
        }
        let script = format!(
            "#!/bin/sh\n# Open MPI's launch agent for fogkit's test hosts.\n\
             while [ $# -gt 0 ]; do case \"$1\" in -*) shift ;; *) break ;; esac; done\n\
             host=$1; shift\ncase \"$host\" in\n{cases}    *) echo \"no test host $host\" >&2; exit 1 ;;\nesac\n\
             export TESTHOST_COMMAND=\"$*\" TESTHOST_NAME=\"$name\"\n\
             exec ip netns exec \"$ns\" unshare --mount --uts sh -c \
             'mount -t tmpfs -o size=2g tmpfs /dev/shm && hostname \"$TESTHOST_NAME\" \
             && exec sh -c \"$TESTHOST_COMMAND\"'\n"
        );
        let path = self.agent();
        std::fs::write(&path, script).map_err(|e| format!("{}: {e}", path.display()))?;
        let ok = Command::new("chmod")
            .arg("+x")
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(())
            .ok_or_else(|| format!("cannot make {} executable", path.display()))
    }

    fn agent(&self) -> PathBuf {
        self.dir.join("agent.sh")
    }

    /// How many hosts.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// Host `i`'s host name (what `hostname` says on it).
    pub fn hostname(&self, i: usize) -> String {
        format!("fogkit-host{i}")
    }

    /// Host `i`'s address, which is also its name for mpirun.
    pub fn addr(&self, i: usize) -> &str {
        &self.addrs[i]
    }

    /// The hosts' network, e.g. `198.18.5.0/24`.
    pub fn subnet(&self) -> &str {
        &self.subnet
    }

    /// A hostfile giving each host `slots` slots.
    pub fn hostfile(&self, slots: usize) -> Result<PathBuf, String> {
        let path = self.dir.join(format!("hostfile-{slots}"));
        let text: String = self
            .addrs
            .iter()
            .map(|a| format!("{a} slots={slots}\n"))
            .collect();
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    /// `fogrun` options that run `slots` ranks on each host over the hosts' network.
    pub fn fogrun_args(&self, slots: usize) -> Result<Vec<String>, String> {
        let hostfile = self.hostfile(slots)?;
        Ok(vec![
            "--hostfile".into(),
            hostfile.to_string_lossy().into_owned(),
            "--network-interface".into(),
            self.subnet.clone(),
            "--mca".into(),
            "plm_rsh_agent".into(),
            self.agent().to_string_lossy().into_owned(),
            // The agent starts each host's daemon itself (no tree of ssh hops).
            "--mca".into(),
            "plm_rsh_no_tree_spawn".into(),
            "1".into(),
        ])
    }

    /// Cuts host `i` off the network (its link goes down), as a failed switch port would.
    pub fn cut(&self, i: usize) -> Result<(), String> {
        ip(&["link", "set", &self.links[i], "down"])
    }

    /// Restores host `i`'s link.
    pub fn restore(&self, i: usize) -> Result<(), String> {
        ip(&["link", "set", &self.links[i], "up"])
    }

    /// The processes running on host `i`, as `(pid, command line)`.
    pub fn processes(&self, i: usize) -> Vec<(u32, String)> {
        ip_output(&["netns", "pids", &self.names[i]])
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .map(|p: u32| {
                let cmd = std::fs::read(format!("/proc/{p}/cmdline"))
                    .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                    .unwrap_or_default();
                (p, cmd.trim().to_string())
            })
            .collect()
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in &self.names {
            kill_all_in(ns);
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
