//! `wdsmc images`: the server's OS images (MS-WDSOSD image enumeration over authenticated
//! RPC), as a table or one JSON object.

use serde_json::json;
use wdsmc::transport::{ImagesRequest, Initiation, list_images};
use wdsmc::wire::wdsc::ListFormat;

use super::args::ImagesArgs;
use super::exit::{self, ExitCode, Failure};
use super::login;
use super::units::format_bytes;

pub fn run(args: ImagesArgs) -> Result<(), Failure> {
    let initiation = login::initiation(&args.auth, &mut |w| eprintln!("wdsmc: warning: {w}"))?;
    let Initiation::Rpc(rpc) = initiation else {
        return Err(Failure::msg(
            ExitCode::Usage,
            "image enumeration is authenticated: give --user [DOMAIN\\]NAME (or --auth anonymous)",
        ));
    };
    let mut request = ImagesRequest::new(args.server.clone(), rpc);
    request.timeout = args.timeout;
    let list = list_images(&request, &mut |_| {}).map_err(|e| {
        Failure::msg(
            ExitCode::for_transport_error(&e),
            exit::transport_message(&e, true),
        )
    })?;
    let images = &list.reply.images;
    if args.json {
        let entries: Vec<_> = images
            .iter()
            .map(|i| {
                json!({
                    "group": i.group,
                    "name": i.name(),
                    "index": i.index,
                    "namespace": i.namespace,
                    "size": i.namespace_size,
                    "path": i.path,
                    "resource_path": i.resource_path,
                })
            })
            .collect();
        let out = json!({
            "schema": "wdsmc.images/1",
            "server": list.server.ip().to_string(),
            "format": match list.reply.format() { ListFormat::V1 => "v1", ListFormat::V2 => "v2" },
            "options": list.reply.options,
            "images": entries,
        });
        println!("{out}");
        return Ok(());
    }
    if images.is_empty() {
        println!("the server offers no images");
        return Ok(());
    }
    let rows: Vec<[String; 5]> = images
        .iter()
        .map(|i| {
            [
                i.group.clone(),
                i.name(),
                i.index.to_string(),
                i.namespace.clone().unwrap_or_else(|| "-".into()),
                i.namespace_size.map_or_else(|| "-".into(), format_bytes),
            ]
        })
        .collect();
    let header = ["GROUP", "IMAGE", "INDEX", "NAMESPACE", "SIZE"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        format!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {:<w3$}  {:>w4$}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4]
        )
    };
    println!("{}", line(header).trim_end());
    for row in &rows {
        println!(
            "{}",
            line([&row[0], &row[1], &row[2], &row[3], &row[4]]).trim_end()
        );
    }
    Ok(())
}
