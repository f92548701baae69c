//! `wdsmc apply`: download a WIM over multicast, then apply one of its images to a folder
//! with DISM (Windows) or wimlib's `wimapply` (elsewhere), like `wdsmcast /Apply-Image`. The
//! image is downloaded whole first (a normal WIM keeps its index at the end, so it cannot be
//! applied from a pipe) into `--image-cache` or the target folder itself, and removed after
//! the apply unless `--keep-image`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use wdsmc::download::{Destination, DownloadOptions, Output};

use super::args::ApplyArgs;
use super::exit::{ExitCode, Failure};
use super::get::{log_in, plan, refusal, reporter};
use super::jobs::{self, Job};

/// The program that applies an image, and how to call it.
struct ApplyTool {
    program: PathBuf,
    /// `dism`-style arguments (Windows) rather than `wimapply IMAGE INDEX DIR`.
    dism: bool,
}

impl ApplyTool {
    /// Finds the tool in PATH before anything is downloaded.
    fn find() -> Result<ApplyTool, Failure> {
        let (name, dism) = if cfg!(windows) {
            ("dism.exe", true)
        } else {
            ("wimapply", false)
        };
        let program = find_in_path(name).ok_or_else(|| {
            Failure::msg(
                ExitCode::Usage,
                if dism {
                    "dism.exe is not in PATH; run from a Windows or WinPE shell that has DISM (X:\\Windows\\System32)".to_string()
                } else {
                    "wimapply is not installed; install wimlib's tools (Debian and Ubuntu: apt install wimtools; Fedora: dnf install wimlib-utils)".to_string()
                },
            )
        })?;
        Ok(ApplyTool { program, dism })
    }

    fn command(&self, image: &Path, index: u32, to: &Path) -> Command {
        let mut command = Command::new(&self.program);
        if self.dism {
            command.arg("/Apply-Image");
            command.arg(join("/ImageFile:", image));
            command.arg(format!("/Index:{index}"));
            command.arg(join("/ApplyDir:", to));
        } else {
            command.arg(image).arg(index.to_string()).arg(to);
        }
        command
    }
}

fn join(flag: &str, path: &Path) -> OsString {
    let mut arg = OsString::from(flag);
    arg.push(path.as_os_str());
    arg
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Removes the downloaded image however `apply` ends, unless it is to be kept.
struct ImageGuard {
    path: PathBuf,
    keep: bool,
}

impl Drop for ImageGuard {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("wdsmc: the image is kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

pub fn run(args: ApplyArgs) -> Result<(), Failure> {
    let tool = ApplyTool::find()?;
    if !args.to.is_dir() {
        return Err(Failure::msg(
            ExitCode::Usage,
            format!(
                "--to {} is not a folder; give the (mounted) folder to apply the image to",
                args.to.display()
            ),
        ));
    }
    let folder = args.image_cache.clone().unwrap_or_else(|| args.to.clone());
    let name =
        wdsmc::download::default_file_name(&args.object).unwrap_or_else(|| "image.wim".into());
    let image = folder.join(format!(".wdsmc-image-{}-{name}", std::process::id()));
    let mut plan = plan(&args.source, &args.transfer, &args.object)?;
    let options = DownloadOptions {
        replace_existing: true,
        keep_partial: false,
        sha256: args.transfer.sha256,
    };
    let output =
        Output::create(Destination::File(image.clone()), &args.object, options).map_err(refusal)?;
    log_in(&mut plan, &args.source)?;
    let job = Job {
        label: args.object.clone(),
        object: args.object.clone(),
        output,
    };
    let labels = [job.label.clone()];
    let code = jobs::run(vec![job], plan, reporter(&args.transfer, &labels));
    if code != ExitCode::Success {
        // The download engine already removed its partial file.
        return Err(Failure::reported(code));
    }
    let _guard = ImageGuard {
        path: image.clone(),
        keep: args.keep_image,
    };
    if !args.transfer.quiet {
        eprintln!(
            "wdsmc: applying image {} of {} to {}",
            args.index,
            args.object,
            args.to.display()
        );
    }
    let status = tool
        .command(&image, args.index, &args.to)
        .status()
        .map_err(|e| {
            Failure::msg(
                ExitCode::Apply,
                format!("cannot run {}: {e}", tool.program.display()),
            )
        })?;
    if !status.success() {
        return Err(Failure::msg(
            ExitCode::Apply,
            format!(
                "{} failed ({status}) applying image {} of {} to {}",
                tool.program.display(),
                args.index,
                args.object,
                args.to.display()
            ),
        ));
    }
    Ok(())
}
