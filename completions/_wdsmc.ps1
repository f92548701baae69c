
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'wdsmc' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'wdsmc'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'wdsmc' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Download one or more objects from a WDS multicast namespace')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Download a WIM image and apply one of its images to a folder (DISM on Windows, wimapply elsewhere), like wdsmcast /Apply-Image')
            [CompletionResult]::new('info', 'info', [CompletionResultType]::ParameterValue, 'Ask the server to set up a session and print its description, without downloading')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Diagnose why multicast does not start: check each step from the server''s name to multicast data on the interface, and name the first that fails')
            [CompletionResult]::new('watch', 'watch', [CompletionResultType]::ParameterValue, 'Watch a session''s multicast without taking part in it (nothing is sent to the server)')
            [CompletionResult]::new('images', 'images', [CompletionResultType]::ParameterValue, 'List the OS images the server offers (MS-WDSOSD image enumeration, authenticated RPC)')
            [CompletionResult]::new('trace', 'trace', [CompletionResultType]::ParameterValue, 'Read back a --trace file')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve folders as multicast namespaces (reference server)')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Serve a random file on loopback and download it with several clients at once')
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Write the shell completions or man pages (for packaging; they are committed)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'wdsmc;get' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'WDS server, as HOST or HOST:PORT (the port of UDP initiation, 5041 by default)')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Multicast namespace on the server')
            [CompletionResult]::new('--interface', '--interface', [CompletionResultType]::ParameterName, 'Local interface for multicast, by address or name (e.g. 192.168.1.20 or eth0)')
            [CompletionResult]::new('--start-timeout', '--start-timeout', [CompletionResultType]::ParameterName, 'Limit for session start: initiation, join and first data each [e.g. 30s, 2m]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Log in as this user ([DOMAIN\]NAME or NAME@REALM) and initiate over RPC. The password comes from --password-file, else WDSMC_PASSWORD, else the credential cache (Kerberos), else a prompt on a terminal')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from the first line of FILE')
            [CompletionResult]::new('--password', '--password', [CompletionResultType]::ParameterName, 'The password itself (other users of this machine can see it; prefer --password-file or WDSMC_PASSWORD)')
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'Security provider of the RPC login [default: negotiate]')
            [CompletionResult]::new('--kdc', '--kdc', [CompletionResultType]::ParameterName, 'Kerberos KDC (HOST[:PORT], port 88 by default). Without it: DNS SRV _kerberos._tcp.REALM, then the realm''s own name')
            [CompletionResult]::new('--spn', '--spn', [CompletionResultType]::ParameterName, 'The WDS server''s Kerberos service principal [default: host/<--server''s name>]')
            [CompletionResult]::new('--rpc-port', '--rpc-port', [CompletionResultType]::ParameterName, 'TCP port of the WDS RPC listener')
            [CompletionResult]::new('--initiation', '--initiation', [CompletionResultType]::ParameterName, 'How to initiate: auto is rpc when --user or --auth is given, udp otherwise')
            [CompletionResult]::new('--object', '--object', [CompletionResultType]::ParameterName, 'Object (content) to download; repeat to download several at once')
            [CompletionResult]::new('--content', '--content', [CompletionResultType]::ParameterName, 'Object (content) to download; repeat to download several at once')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output file, or `-` for stdout; a folder when several objects are given. Default: the object''s file name in the current folder')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output file, or `-` for stdout; a folder when several objects are given. Default: the object''s file name in the current folder')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Give up after this long without data from the server [e.g. 30s]')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Progress display on stderr')
            [CompletionResult]::new('--sha256', '--sha256', [CompletionResultType]::ParameterName, 'Expected SHA-256 of the object (64 hex digits); a mismatch deletes the file (exit 8)')
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Write one line per packet sent or received to FILE')
            [CompletionResult]::new('--cache-size', '--cache-size', [CompletionResultType]::ParameterName, 'Received data held in memory before it is written [e.g. 32MiB, 512k, 1G]')
            [CompletionResult]::new('--endpoint-mapper', '--endpoint-mapper', [CompletionResultType]::ParameterName, 'Ask the endpoint mapper (TCP 135) for the RPC listener''s port')
            [CompletionResult]::new('--pre-os', '--pre-os', [CompletionResultType]::ParameterName, 'Running pre-OS (WinPE): ask the server for checksum-only packet security')
            [CompletionResult]::new('--keep-partial', '--keep-partial', [CompletionResultType]::ParameterName, 'Keep the partial file when the download fails or is cancelled')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace an existing output file')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No start and summary lines, no progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No start and summary lines, no progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail: notices and full statistics; twice: every packet on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail: notices and full statistics; twice: every packet on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'wdsmc;apply' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'WDS server, as HOST or HOST:PORT (the port of UDP initiation, 5041 by default)')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Multicast namespace on the server')
            [CompletionResult]::new('--interface', '--interface', [CompletionResultType]::ParameterName, 'Local interface for multicast, by address or name (e.g. 192.168.1.20 or eth0)')
            [CompletionResult]::new('--start-timeout', '--start-timeout', [CompletionResultType]::ParameterName, 'Limit for session start: initiation, join and first data each [e.g. 30s, 2m]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Log in as this user ([DOMAIN\]NAME or NAME@REALM) and initiate over RPC. The password comes from --password-file, else WDSMC_PASSWORD, else the credential cache (Kerberos), else a prompt on a terminal')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from the first line of FILE')
            [CompletionResult]::new('--password', '--password', [CompletionResultType]::ParameterName, 'The password itself (other users of this machine can see it; prefer --password-file or WDSMC_PASSWORD)')
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'Security provider of the RPC login [default: negotiate]')
            [CompletionResult]::new('--kdc', '--kdc', [CompletionResultType]::ParameterName, 'Kerberos KDC (HOST[:PORT], port 88 by default). Without it: DNS SRV _kerberos._tcp.REALM, then the realm''s own name')
            [CompletionResult]::new('--spn', '--spn', [CompletionResultType]::ParameterName, 'The WDS server''s Kerberos service principal [default: host/<--server''s name>]')
            [CompletionResult]::new('--rpc-port', '--rpc-port', [CompletionResultType]::ParameterName, 'TCP port of the WDS RPC listener')
            [CompletionResult]::new('--initiation', '--initiation', [CompletionResultType]::ParameterName, 'How to initiate: auto is rpc when --user or --auth is given, udp otherwise')
            [CompletionResult]::new('--object', '--object', [CompletionResultType]::ParameterName, 'The image (a WIM) to download')
            [CompletionResult]::new('--content', '--content', [CompletionResultType]::ParameterName, 'The image (a WIM) to download')
            [CompletionResult]::new('--index', '--index', [CompletionResultType]::ParameterName, 'Image index inside the WIM to apply')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Folder to apply the image to (a mounted target volume, e.g. /mnt or W:\)')
            [CompletionResult]::new('--image-cache', '--image-cache', [CompletionResultType]::ParameterName, 'Folder for the downloaded image while it is applied [default: inside --to]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Give up after this long without data from the server [e.g. 30s]')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Progress display on stderr')
            [CompletionResult]::new('--sha256', '--sha256', [CompletionResultType]::ParameterName, 'Expected SHA-256 of the object (64 hex digits); a mismatch deletes the file (exit 8)')
            [CompletionResult]::new('--trace', '--trace', [CompletionResultType]::ParameterName, 'Write one line per packet sent or received to FILE')
            [CompletionResult]::new('--cache-size', '--cache-size', [CompletionResultType]::ParameterName, 'Received data held in memory before it is written [e.g. 32MiB, 512k, 1G]')
            [CompletionResult]::new('--endpoint-mapper', '--endpoint-mapper', [CompletionResultType]::ParameterName, 'Ask the endpoint mapper (TCP 135) for the RPC listener''s port')
            [CompletionResult]::new('--pre-os', '--pre-os', [CompletionResultType]::ParameterName, 'Running pre-OS (WinPE): ask the server for checksum-only packet security')
            [CompletionResult]::new('--keep-image', '--keep-image', [CompletionResultType]::ParameterName, 'Keep the downloaded image after applying it (and after a failure)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No start and summary lines, no progress')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No start and summary lines, no progress')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More detail: notices and full statistics; twice: every packet on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More detail: notices and full statistics; twice: every packet on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'wdsmc;info' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'WDS server, as HOST or HOST:PORT (the port of UDP initiation, 5041 by default)')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Multicast namespace on the server')
            [CompletionResult]::new('--interface', '--interface', [CompletionResultType]::ParameterName, 'Local interface for multicast, by address or name (e.g. 192.168.1.20 or eth0)')
            [CompletionResult]::new('--start-timeout', '--start-timeout', [CompletionResultType]::ParameterName, 'Limit for session start: initiation, join and first data each [e.g. 30s, 2m]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Log in as this user ([DOMAIN\]NAME or NAME@REALM) and initiate over RPC. The password comes from --password-file, else WDSMC_PASSWORD, else the credential cache (Kerberos), else a prompt on a terminal')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from the first line of FILE')
            [CompletionResult]::new('--password', '--password', [CompletionResultType]::ParameterName, 'The password itself (other users of this machine can see it; prefer --password-file or WDSMC_PASSWORD)')
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'Security provider of the RPC login [default: negotiate]')
            [CompletionResult]::new('--kdc', '--kdc', [CompletionResultType]::ParameterName, 'Kerberos KDC (HOST[:PORT], port 88 by default). Without it: DNS SRV _kerberos._tcp.REALM, then the realm''s own name')
            [CompletionResult]::new('--spn', '--spn', [CompletionResultType]::ParameterName, 'The WDS server''s Kerberos service principal [default: host/<--server''s name>]')
            [CompletionResult]::new('--rpc-port', '--rpc-port', [CompletionResultType]::ParameterName, 'TCP port of the WDS RPC listener')
            [CompletionResult]::new('--initiation', '--initiation', [CompletionResultType]::ParameterName, 'How to initiate: auto is rpc when --user or --auth is given, udp otherwise')
            [CompletionResult]::new('--object', '--object', [CompletionResultType]::ParameterName, 'Object (content) to describe')
            [CompletionResult]::new('--content', '--content', [CompletionResultType]::ParameterName, 'Object (content) to describe')
            [CompletionResult]::new('--endpoint-mapper', '--endpoint-mapper', [CompletionResultType]::ParameterName, 'Ask the endpoint mapper (TCP 135) for the RPC listener''s port')
            [CompletionResult]::new('--pre-os', '--pre-os', [CompletionResultType]::ParameterName, 'Running pre-OS (WinPE): ask the server for checksum-only packet security')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the description as one JSON object')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'wdsmc;doctor' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'WDS server, as HOST or HOST:PORT (the port of UDP initiation, 5041 by default)')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Multicast namespace of the session to try (with --object; without them the checks stop after the ports)')
            [CompletionResult]::new('--object', '--object', [CompletionResultType]::ParameterName, 'Object of the session to try')
            [CompletionResult]::new('--content', '--content', [CompletionResultType]::ParameterName, 'Object of the session to try')
            [CompletionResult]::new('--interface', '--interface', [CompletionResultType]::ParameterName, 'Local interface for multicast, by address or name')
            [CompletionResult]::new('--multicast-wait', '--multicast-wait', [CompletionResultType]::ParameterName, 'How long multicast data may take to arrive after the JOINACK')
            [CompletionResult]::new('--sample', '--sample', [CompletionResultType]::ParameterName, 'How long to receive data for the loss figure')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'How long to wait for an answer on UDP, for TCP connects, the login and the JOINACK')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Log in as this user ([DOMAIN\]NAME or NAME@REALM) and initiate over RPC. The password comes from --password-file, else WDSMC_PASSWORD, else the credential cache (Kerberos), else a prompt on a terminal')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from the first line of FILE')
            [CompletionResult]::new('--password', '--password', [CompletionResultType]::ParameterName, 'The password itself (other users of this machine can see it; prefer --password-file or WDSMC_PASSWORD)')
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'Security provider of the RPC login [default: negotiate]')
            [CompletionResult]::new('--kdc', '--kdc', [CompletionResultType]::ParameterName, 'Kerberos KDC (HOST[:PORT], port 88 by default). Without it: DNS SRV _kerberos._tcp.REALM, then the realm''s own name')
            [CompletionResult]::new('--spn', '--spn', [CompletionResultType]::ParameterName, 'The WDS server''s Kerberos service principal [default: host/<--server''s name>]')
            [CompletionResult]::new('--rpc-port', '--rpc-port', [CompletionResultType]::ParameterName, 'TCP port of the WDS RPC listener')
            [CompletionResult]::new('--initiation', '--initiation', [CompletionResultType]::ParameterName, 'How to initiate: auto is rpc when --user or --auth is given, udp otherwise')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'One JSON object per step on stdout')
            [CompletionResult]::new('--endpoint-mapper', '--endpoint-mapper', [CompletionResultType]::ParameterName, 'Ask the endpoint mapper (TCP 135) for the RPC listener''s port')
            [CompletionResult]::new('--pre-os', '--pre-os', [CompletionResultType]::ParameterName, 'Running pre-OS (WinPE): ask the server for checksum-only packet security')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'wdsmc;watch' {
            [CompletionResult]::new('--group', '--group', [CompletionResultType]::ParameterName, 'Watch this group directly (ADDR:PORT); nothing at all is sent')
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'Find the group through initiation at this server (only the initiation request is sent; no JOIN)')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Multicast namespace (with --server)')
            [CompletionResult]::new('--object', '--object', [CompletionResultType]::ParameterName, 'Object (with --server)')
            [CompletionResult]::new('--content', '--content', [CompletionResultType]::ParameterName, 'Object (with --server)')
            [CompletionResult]::new('--interface', '--interface', [CompletionResultType]::ParameterName, 'Local interface to join the group on, by address or name')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Seconds between reports')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Stop after this long [default: until Ctrl-C]')
            [CompletionResult]::new('--idle-exit', '--idle-exit', [CompletionResultType]::ParameterName, 'Stop once the session has been silent this long after data flowed')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Log in as this user ([DOMAIN\]NAME or NAME@REALM) and initiate over RPC. The password comes from --password-file, else WDSMC_PASSWORD, else the credential cache (Kerberos), else a prompt on a terminal')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from the first line of FILE')
            [CompletionResult]::new('--password', '--password', [CompletionResultType]::ParameterName, 'The password itself (other users of this machine can see it; prefer --password-file or WDSMC_PASSWORD)')
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'Security provider of the RPC login [default: negotiate]')
            [CompletionResult]::new('--kdc', '--kdc', [CompletionResultType]::ParameterName, 'Kerberos KDC (HOST[:PORT], port 88 by default). Without it: DNS SRV _kerberos._tcp.REALM, then the realm''s own name')
            [CompletionResult]::new('--spn', '--spn', [CompletionResultType]::ParameterName, 'The WDS server''s Kerberos service principal [default: host/<--server''s name>]')
            [CompletionResult]::new('--rpc-port', '--rpc-port', [CompletionResultType]::ParameterName, 'TCP port of the WDS RPC listener')
            [CompletionResult]::new('--initiation', '--initiation', [CompletionResultType]::ParameterName, 'How to initiate: auto is rpc when --user or --auth is given, udp otherwise')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'JSON lines on stdout (one per report, and a summary at the end)')
            [CompletionResult]::new('--endpoint-mapper', '--endpoint-mapper', [CompletionResultType]::ParameterName, 'Ask the endpoint mapper (TCP 135) for the RPC listener''s port')
            [CompletionResult]::new('--pre-os', '--pre-os', [CompletionResultType]::ParameterName, 'Running pre-OS (WinPE): ask the server for checksum-only packet security')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'wdsmc;images' {
            [CompletionResult]::new('--server', '--server', [CompletionResultType]::ParameterName, 'WDS server, as HOST (a :PORT suffix is the UDP port and is ignored)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Limit for connect, login and call')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Log in as this user ([DOMAIN\]NAME or NAME@REALM) and initiate over RPC. The password comes from --password-file, else WDSMC_PASSWORD, else the credential cache (Kerberos), else a prompt on a terminal')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from the first line of FILE')
            [CompletionResult]::new('--password', '--password', [CompletionResultType]::ParameterName, 'The password itself (other users of this machine can see it; prefer --password-file or WDSMC_PASSWORD)')
            [CompletionResult]::new('--auth', '--auth', [CompletionResultType]::ParameterName, 'Security provider of the RPC login [default: negotiate]')
            [CompletionResult]::new('--kdc', '--kdc', [CompletionResultType]::ParameterName, 'Kerberos KDC (HOST[:PORT], port 88 by default). Without it: DNS SRV _kerberos._tcp.REALM, then the realm''s own name')
            [CompletionResult]::new('--spn', '--spn', [CompletionResultType]::ParameterName, 'The WDS server''s Kerberos service principal [default: host/<--server''s name>]')
            [CompletionResult]::new('--rpc-port', '--rpc-port', [CompletionResultType]::ParameterName, 'TCP port of the WDS RPC listener')
            [CompletionResult]::new('--initiation', '--initiation', [CompletionResultType]::ParameterName, 'How to initiate: auto is rpc when --user or --auth is given, udp otherwise')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the list as one JSON object')
            [CompletionResult]::new('--endpoint-mapper', '--endpoint-mapper', [CompletionResultType]::ParameterName, 'Ask the endpoint mapper (TCP 135) for the RPC listener''s port')
            [CompletionResult]::new('--pre-os', '--pre-os', [CompletionResultType]::ParameterName, 'Running pre-OS (WinPE): ask the server for checksum-only packet security')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'wdsmc;trace' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('summarize', 'summarize', [CompletionResultType]::ParameterValue, 'Per object: phase timings, loss, repairs and why the session ended')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'wdsmc;trace;summarize' {
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'One JSON object per object on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'wdsmc;trace;help' {
            [CompletionResult]::new('summarize', 'summarize', [CompletionResultType]::ParameterValue, 'Per object: phase timings, loss, repairs and why the session ended')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'wdsmc;trace;help;summarize' {
            break
        }
        'wdsmc;trace;help;help' {
            break
        }
        'wdsmc;serve' {
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Namespace to serve, as NAME=DIR; repeat for several')
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen and send multicast on')
            [CompletionResult]::new('--msi-port', '--msi-port', [CompletionResultType]::ParameterName, 'UDP port for session initiation requests')
            [CompletionResult]::new('--group-range', '--group-range', [CompletionResultType]::ParameterName, 'Multicast groups given to sessions, as a CIDR block (IPv4 or IPv6)')
            [CompletionResult]::new('--port-range', '--port-range', [CompletionResultType]::ParameterName, 'UDP ports given to sessions, inclusive')
            [CompletionResult]::new('--block-size', '--block-size', [CompletionResultType]::ParameterName, 'Block size in bytes [e.g. 8192, 16k]')
            [CompletionResult]::new('--max-rate', '--max-rate', [CompletionResultType]::ParameterName, 'Cap each session''s data rate [e.g. 100MiB/s, 10M]')
            [CompletionResult]::new('--auto-disconnect-below', '--auto-disconnect-below', [CompletionResultType]::ParameterName, 'Kick clients whose progress stays below RATE')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Multicast TTL (hop limit)')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log lines as human text or JSON')
            [CompletionResult]::new('--session-timeout', '--session-timeout', [CompletionResultType]::ParameterName, 'End a session after this long without any client packet')
            [CompletionResult]::new('--accounts', '--accounts', [CompletionResultType]::ParameterName, 'Serve authenticated initiation over RPC to the users in FILE (lines [DOMAIN\]NAME:PASSWORD, # comments)')
            [CompletionResult]::new('--keytab', '--keytab', [CompletionResultType]::ParameterName, 'Also accept Kerberos logins (raw and inside SPNEGO) with the service keys in this keytab')
            [CompletionResult]::new('--spn', '--spn', [CompletionResultType]::ParameterName, 'The service principal Kerberos tickets must be for (SERVICE/HOST[@REALM]) [default: any principal in --keytab]')
            [CompletionResult]::new('--rpc-port', '--rpc-port', [CompletionResultType]::ParameterName, 'TCP port of the RPC listener (with --accounts or --keytab)')
            [CompletionResult]::new('--security-mode', '--security-mode', [CompletionResultType]::ParameterName, 'Packet security for authenticated clients that are not pre-OS: checksum, hash (HMAC both ways) or sign (the server signs, clients hash)')
            [CompletionResult]::new('--sign-key-bits', '--sign-key-bits', [CompletionResultType]::ParameterName, 'Bits of the RSA key made at start for --security-mode sign')
            [CompletionResult]::new('--require-auth', '--require-auth', [CompletionResultType]::ParameterName, 'Refuse UDP initiation (with an error reply): every client must log in')
            [CompletionResult]::new('--allow-anonymous', '--allow-anonymous', [CompletionResultType]::ParameterName, 'Accept anonymous NTLM logins')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'wdsmc;demo' {
            [CompletionResult]::new('--size', '--size', [CompletionResultType]::ParameterName, 'Size of the random file to serve')
            [CompletionResult]::new('--clients', '--clients', [CompletionResultType]::ParameterName, 'Number of clients downloading at once')
            [CompletionResult]::new('--progress', '--progress', [CompletionResultType]::ParameterName, 'Progress display on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'wdsmc;generate' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'wdsmc;help' {
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Download one or more objects from a WDS multicast namespace')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Download a WIM image and apply one of its images to a folder (DISM on Windows, wimapply elsewhere), like wdsmcast /Apply-Image')
            [CompletionResult]::new('info', 'info', [CompletionResultType]::ParameterValue, 'Ask the server to set up a session and print its description, without downloading')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Diagnose why multicast does not start: check each step from the server''s name to multicast data on the interface, and name the first that fails')
            [CompletionResult]::new('watch', 'watch', [CompletionResultType]::ParameterValue, 'Watch a session''s multicast without taking part in it (nothing is sent to the server)')
            [CompletionResult]::new('images', 'images', [CompletionResultType]::ParameterValue, 'List the OS images the server offers (MS-WDSOSD image enumeration, authenticated RPC)')
            [CompletionResult]::new('trace', 'trace', [CompletionResultType]::ParameterValue, 'Read back a --trace file')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Serve folders as multicast namespaces (reference server)')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Serve a random file on loopback and download it with several clients at once')
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Write the shell completions or man pages (for packaging; they are committed)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'wdsmc;help;get' {
            break
        }
        'wdsmc;help;apply' {
            break
        }
        'wdsmc;help;info' {
            break
        }
        'wdsmc;help;doctor' {
            break
        }
        'wdsmc;help;watch' {
            break
        }
        'wdsmc;help;images' {
            break
        }
        'wdsmc;help;trace' {
            [CompletionResult]::new('summarize', 'summarize', [CompletionResultType]::ParameterValue, 'Per object: phase timings, loss, repairs and why the session ended')
            break
        }
        'wdsmc;help;trace;summarize' {
            break
        }
        'wdsmc;help;serve' {
            break
        }
        'wdsmc;help;demo' {
            break
        }
        'wdsmc;help;generate' {
            break
        }
        'wdsmc;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
