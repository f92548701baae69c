//! `wdsmc trace summarize FILE`: what a `--trace` file says, per object.

use std::time::Duration;

use serde_json::json;
use wdsmc::diag::trace::summarize;

use super::args::TraceSummarizeArgs;
use super::exit::{ExitCode, Failure};

pub fn run(args: TraceSummarizeArgs) -> Result<(), Failure> {
    let file = std::fs::File::open(&args.file).map_err(|e| {
        Failure::msg(
            ExitCode::Usage,
            format!("cannot open {}: {e}", args.file.display()),
        )
    })?;
    let trace = summarize(std::io::BufReader::new(file)).map_err(|e| {
        Failure::msg(
            ExitCode::Usage,
            format!("cannot read {}: {e}", args.file.display()),
        )
    })?;
    if trace.objects.is_empty() {
        return Err(Failure::msg(
            ExitCode::Usage,
            format!("{} holds no trace lines", args.file.display()),
        ));
    }
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e3);
    for s in &trace.objects {
        if args.json {
            let line = json!({
                "schema": "wdsmc.trace-summary/1",
                "object": s.label,
                "initiation": if s.rpc { "rpc" } else { "udp" },
                "initiation_ms": ms(s.initiation),
                "join_ms": ms(s.join),
                "first_data_ms": ms(s.first_data),
                "transfer_ms": ms(s.transfer),
                "odata": s.odata,
                "rdata": s.rdata,
                "blocks": s.blocks,
                "ncf": s.ncf,
                "spm": s.spm,
                "nacks": s.nacks,
                "nacked": s.nacked,
                "acks": s.acks,
                "loss": s.loss(),
                "kicks": s.kicks,
                "leave": s.leave,
                "exit_code": s.exit.as_ref().map(|(c, _)| *c),
                "end": s.end_reason(),
                "lines": s.lines,
            });
            println!("{line}");
            continue;
        }
        let phase = |d: Option<Duration>| {
            d.map_or_else(
                || "-".to_string(),
                |d| format!("{:.1} ms", d.as_secs_f64() * 1e3),
            )
        };
        println!("{}", s.label);
        println!(
            "  initiation ({})  {}",
            if s.rpc { "rpc" } else { "udp" },
            phase(s.initiation)
        );
        println!("  join → joinack   {}", phase(s.join));
        println!("  joinack → data   {}", phase(s.first_data));
        println!("  transfer         {}", phase(s.transfer));
        println!(
            "  received         {} ODATA, {} RDATA (repairs), {} blocks, {} NCF, {} SPM",
            s.odata, s.rdata, s.blocks, s.ncf, s.spm
        );
        println!(
            "  sent             {} NACKs for {} sequence numbers{}, {} ACKs",
            s.nacks,
            s.nacked,
            s.loss()
                .map_or_else(String::new, |l| format!(" ({:.2} % loss)", l * 100.0)),
            s.acks
        );
        println!("  end              {}", s.end_reason());
    }
    if trace.skipped > 0 {
        eprintln!(
            "wdsmc: {} lines of {} are not trace lines and were skipped",
            trace.skipped,
            args.file.display()
        );
    }
    Ok(())
}
