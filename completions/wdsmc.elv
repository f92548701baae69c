
use builtin;
use str;

set edit:completion:arg-completer[wdsmc] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'wdsmc'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'wdsmc'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand get 'Download one or more objects from a WDS multicast namespace'
            cand apply 'Download a WIM image and apply one of its images to a folder (DISM on Windows, wimapply elsewhere), like wdsmcast /Apply-Image'
            cand info 'Ask the server to set up a session and print its description, without downloading'
            cand doctor 'Diagnose why multicast does not start: check each step from the server''s name to multicast data on the interface, and name the first that fails'
            cand watch 'Watch a session''s multicast without taking part in it (nothing is sent to the server)'
            cand images 'List the OS images the server offers (MS-WDSOSD image enumeration, authenticated RPC)'
            cand trace 'Read back a --trace file'
            cand serve 'Serve folders as multicast namespaces (reference server)'
            cand demo 'Serve a random file on loopback and download it with several clients at once'
            cand generate 'Write the shell completions or man pages (for packaging; they are committed)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'wdsmc;get'= {
            cand --server 'WDS server, as HOST or HOST:PORT (the port of UDP initiation, 5041 by default)'
            cand --namespace 'Multicast namespace on the server'
            cand --interface 'Local interface for multicast, by address or name (e.g. 192.168.1.20 or eth0)'
            cand --start-timeout 'Limit for session start: initiation, join and first data each [e.g. 30s, 2m]'
            cand --user 'Log in as this user ([DOMAIN\]NAME or NAME@REALM) and initiate over RPC. The password comes from --password-file, else WDSMC_PASSWORD, else the credential cache (Kerberos), else a prompt on a terminal'
            cand --password-file 'Read the password from the first line of FILE'
            cand --password 'The password itself (other users of this machine can see it; prefer --password-file or WDSMC_PASSWORD)'
            cand --auth 'Security provider of the RPC login [default: negotiate]'
            cand --kdc 'Kerberos KDC (HOST[:PORT], port 88 by default). Without it: DNS SRV _kerberos._tcp.REALM, then the realm''s own name'
            cand --spn 'The WDS server''s Kerberos service principal [default: host/<--server''s name>]'
            cand --rpc-port 'TCP port of the WDS RPC listener'
            cand --initiation 'How to initiate: auto is rpc when --user or --auth is given, udp otherwise'
            cand --object 'Object (content) to download; repeat to download several at once'
            cand --content 'Object (content) to download; repeat to download several at once'
            cand -o 'Output file, or `-` for stdout; a folder when several objects are given. Default: the object''s file name in the current folder'
            cand --output 'Output file, or `-` for stdout; a folder when several objects are given. Default: the object''s file name in the current folder'
            cand --timeout 'Give up after this long without data from the server [e.g. 30s]'
            cand --progress 'Progress display on stderr'
            cand --sha256 'Expected SHA-256 of the object (64 hex digits); a mismatch deletes the file (exit 8)'
            cand --trace 'Write one line per packet sent or received to FILE'
            cand --cache-size 'Received data held in memory before it is written [e.g. 32MiB, 512k, 1G]'
            cand --endpoint-mapper 'Ask the endpoint mapper (TCP 135) for the RPC listener''s port'
            cand --pre-os 'Running pre-OS (WinPE): ask the server for checksum-only packet security'
            cand --keep-partial 'Keep the partial file when the download fails or is cancelled'
            cand --force 'Replace an existing output file'
            cand -q 'No start and summary lines, no progress'
            cand --quiet 'No start and summary lines, no progress'
            cand -v 'More detail: notices and full statistics; twice: every packet on stderr'
            cand --verbose 'More detail: notices and full statistics; twice: every packet on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'wdsmc;apply'= {
            cand --server 'WDS server, as HOST or HOST:PORT (the port of UDP initiation, 5041 by default)'
            cand --namespace 'Multicast namespace on the server'
            cand --interface 'Local interface for multicast, by address or name (e.g. 192.168.1.20 or eth0)'
            cand --start-timeout 'Limit for session start: initiation, join and first data each [e.g. 30s, 2m]'
            cand --user 'Log in as this user ([DOMAIN\]NAME or NAME@REALM) and initiate over RPC. The password comes from --password-file, else WDSMC_PASSWORD, else the credential cache (Kerberos), else a prompt on a terminal'
            cand --password-file 'Read the password from the first line of FILE'
            cand --password 'The password itself (other users of this machine can see it; prefer --password-file or WDSMC_PASSWORD)'
            cand --auth 'Security provider of the RPC login [default: negotiate]'
            cand --kdc 'Kerberos KDC (HOST[:PORT], port 88 by default). Without it: DNS SRV _kerberos._tcp.REALM, then the realm''s own name'
            cand --spn 'The WDS server''s Kerberos service principal [default: host/<--server''s name>]'
            cand --rpc-port 'TCP port of the WDS RPC listener'
            cand --initiation 'How to initiate: auto is rpc when --user or --auth is given, udp otherwise'
            cand --object 'The image (a WIM) to download'
            cand --content 'The image (a WIM) to download'
            cand --index 'Image index inside the WIM to apply'
            cand --to 'Folder to apply the image to (a mounted target volume, e.g. /mnt or W:\)'
            cand --image-cache 'Folder for the downloaded image while it is applied [default: inside --to]'
            cand --timeout 'Give up after this long without data from the server [e.g. 30s]'
            cand --progress 'Progress display on stderr'
            cand --sha256 'Expected SHA-256 of the object (64 hex digits); a mismatch deletes the file (exit 8)'
            cand --trace 'Write one line per packet sent or received to FILE'
            cand --cache-size 'Received data held in memory before it is written [e.g. 32MiB, 512k, 1G]'
            cand --endpoint-mapper 'Ask the endpoint mapper (TCP 135) for the RPC listener''s port'
            cand --pre-os 'Running pre-OS (WinPE): ask the server for checksum-only packet security'
            cand --keep-image 'Keep the downloaded image after applying it (and after a failure)'
            cand -q 'No start and summary lines, no progress'
            cand --quiet 'No start and summary lines, no progress'
            cand -v 'More detail: notices and full statistics; twice: every packet on stderr'
            cand --verbose 'More detail: notices and full statistics; twice: every packet on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'wdsmc;info'= {
            cand --server 'WDS server, as HOST or HOST:PORT (the port of UDP initiation, 5041 by default)'
            cand --namespace 'Multicast namespace on the server'
            cand --interface 'Local interface for multicast, by address or name (e.g. 192.168.1.20 or eth0)'
            cand --start-timeout 'Limit for session start: initiation, join and first data each [e.g. 30s, 2m]'
            cand --user 'Log in as this user ([DOMAIN\]NAME or NAME@REALM) and initiate over RPC. The password comes from --password-file, else WDSMC_PASSWORD, else the credential cache (Kerberos), else a prompt on a terminal'
            cand --password-file 'Read the password from the first line of FILE'
            cand --password 'The password itself (other users of this machine can see it; prefer --password-file or WDSMC_PASSWORD)'
            cand --auth 'Security provider of the RPC login [default: negotiate]'
            cand --kdc 'Kerberos KDC (HOST[:PORT], port 88 by default). Without it: DNS SRV _kerberos._tcp.REALM, then the realm''s own name'
            cand --spn 'The WDS server''s Kerberos service principal [default: host/<--server''s name>]'
            cand --rpc-port 'TCP port of the WDS RPC listener'
            cand --initiation 'How to initiate: auto is rpc when --user or --auth is given, udp otherwise'
            cand --object 'Object (content) to describe'
            cand --content 'Object (content) to describe'
            cand --endpoint-mapper 'Ask the endpoint mapper (TCP 135) for the RPC listener''s port'
            cand --pre-os 'Running pre-OS (WinPE): ask the server for checksum-only packet security'
            cand --json 'Print the description as one JSON object'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'wdsmc;doctor'= {
            cand --server 'WDS server, as HOST or HOST:PORT (the port of UDP initiation, 5041 by default)'
            cand --namespace 'Multicast namespace of the session to try (with --object; without them the checks stop after the ports)'
            cand --object 'Object of the session to try'
            cand --content 'Object of the session to try'
            cand --interface 'Local interface for multicast, by address or name'
            cand --multicast-wait 'How long multicast data may take to arrive after the JOINACK'
            cand --sample 'How long to receive data for the loss figure'
            cand --wait 'How long to wait for an answer on UDP, for TCP connects, the login and the JOINACK'
            cand --user 'Log in as this user ([DOMAIN\]NAME or NAME@REALM) and initiate over RPC. The password comes from --password-file, else WDSMC_PASSWORD, else the credential cache (Kerberos), else a prompt on a terminal'
            cand --password-file 'Read the password from the first line of FILE'
            cand --password 'The password itself (other users of this machine can see it; prefer --password-file or WDSMC_PASSWORD)'
            cand --auth 'Security provider of the RPC login [default: negotiate]'
            cand --kdc 'Kerberos KDC (HOST[:PORT], port 88 by default). Without it: DNS SRV _kerberos._tcp.REALM, then the realm''s own name'
            cand --spn 'The WDS server''s Kerberos service principal [default: host/<--server''s name>]'
            cand --rpc-port 'TCP port of the WDS RPC listener'
            cand --initiation 'How to initiate: auto is rpc when --user or --auth is given, udp otherwise'
            cand --json 'One JSON object per step on stdout'
            cand --endpoint-mapper 'Ask the endpoint mapper (TCP 135) for the RPC listener''s port'
            cand --pre-os 'Running pre-OS (WinPE): ask the server for checksum-only packet security'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'wdsmc;watch'= {
            cand --group 'Watch this group directly (ADDR:PORT); nothing at all is sent'
            cand --server 'Find the group through initiation at this server (only the initiation request is sent; no JOIN)'
            cand --namespace 'Multicast namespace (with --server)'
            cand --object 'Object (with --server)'
            cand --content 'Object (with --server)'
            cand --interface 'Local interface to join the group on, by address or name'
            cand --interval 'Seconds between reports'
            cand --duration 'Stop after this long [default: until Ctrl-C]'
            cand --idle-exit 'Stop once the session has been silent this long after data flowed'
            cand --user 'Log in as this user ([DOMAIN\]NAME or NAME@REALM) and initiate over RPC. The password comes from --password-file, else WDSMC_PASSWORD, else the credential cache (Kerberos), else a prompt on a terminal'
            cand --password-file 'Read the password from the first line of FILE'
            cand --password 'The password itself (other users of this machine can see it; prefer --password-file or WDSMC_PASSWORD)'
            cand --auth 'Security provider of the RPC login [default: negotiate]'
            cand --kdc 'Kerberos KDC (HOST[:PORT], port 88 by default). Without it: DNS SRV _kerberos._tcp.REALM, then the realm''s own name'
            cand --spn 'The WDS server''s Kerberos service principal [default: host/<--server''s name>]'
            cand --rpc-port 'TCP port of the WDS RPC listener'
            cand --initiation 'How to initiate: auto is rpc when --user or --auth is given, udp otherwise'
            cand --json 'JSON lines on stdout (one per report, and a summary at the end)'
            cand --endpoint-mapper 'Ask the endpoint mapper (TCP 135) for the RPC listener''s port'
            cand --pre-os 'Running pre-OS (WinPE): ask the server for checksum-only packet security'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'wdsmc;images'= {
            cand --server 'WDS server, as HOST (a :PORT suffix is the UDP port and is ignored)'
            cand --timeout 'Limit for connect, login and call'
            cand --user 'Log in as this user ([DOMAIN\]NAME or NAME@REALM) and initiate over RPC. The password comes from --password-file, else WDSMC_PASSWORD, else the credential cache (Kerberos), else a prompt on a terminal'
            cand --password-file 'Read the password from the first line of FILE'
            cand --password 'The password itself (other users of this machine can see it; prefer --password-file or WDSMC_PASSWORD)'
            cand --auth 'Security provider of the RPC login [default: negotiate]'
            cand --kdc 'Kerberos KDC (HOST[:PORT], port 88 by default). Without it: DNS SRV _kerberos._tcp.REALM, then the realm''s own name'
            cand --spn 'The WDS server''s Kerberos service principal [default: host/<--server''s name>]'
            cand --rpc-port 'TCP port of the WDS RPC listener'
            cand --initiation 'How to initiate: auto is rpc when --user or --auth is given, udp otherwise'
            cand --json 'Print the list as one JSON object'
            cand --endpoint-mapper 'Ask the endpoint mapper (TCP 135) for the RPC listener''s port'
            cand --pre-os 'Running pre-OS (WinPE): ask the server for checksum-only packet security'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'wdsmc;trace'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand summarize 'Per object: phase timings, loss, repairs and why the session ended'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'wdsmc;trace;summarize'= {
            cand --json 'One JSON object per object on stdout'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'wdsmc;trace;help'= {
            cand summarize 'Per object: phase timings, loss, repairs and why the session ended'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'wdsmc;trace;help;summarize'= {
        }
        &'wdsmc;trace;help;help'= {
        }
        &'wdsmc;serve'= {
            cand --namespace 'Namespace to serve, as NAME=DIR; repeat for several'
            cand --listen 'Address to listen and send multicast on'
            cand --msi-port 'UDP port for session initiation requests'
            cand --group-range 'Multicast groups given to sessions, as a CIDR block (IPv4 or IPv6)'
            cand --port-range 'UDP ports given to sessions, inclusive'
            cand --block-size 'Block size in bytes [e.g. 8192, 16k]'
            cand --max-rate 'Cap each session''s data rate [e.g. 100MiB/s, 10M]'
            cand --auto-disconnect-below 'Kick clients whose progress stays below RATE'
            cand --ttl 'Multicast TTL (hop limit)'
            cand --log-format 'Log lines as human text or JSON'
            cand --session-timeout 'End a session after this long without any client packet'
            cand --accounts 'Serve authenticated initiation over RPC to the users in FILE (lines [DOMAIN\]NAME:PASSWORD, # comments)'
            cand --keytab 'Also accept Kerberos logins (raw and inside SPNEGO) with the service keys in this keytab'
            cand --spn 'The service principal Kerberos tickets must be for (SERVICE/HOST[@REALM]) [default: any principal in --keytab]'
            cand --rpc-port 'TCP port of the RPC listener (with --accounts or --keytab)'
            cand --security-mode 'Packet security for authenticated clients that are not pre-OS: checksum, hash (HMAC both ways) or sign (the server signs, clients hash)'
            cand --sign-key-bits 'Bits of the RSA key made at start for --security-mode sign'
            cand --require-auth 'Refuse UDP initiation (with an error reply): every client must log in'
            cand --allow-anonymous 'Accept anonymous NTLM logins'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'wdsmc;demo'= {
            cand --size 'Size of the random file to serve'
            cand --clients 'Number of clients downloading at once'
            cand --progress 'Progress display on stderr'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'wdsmc;generate'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'wdsmc;help'= {
            cand get 'Download one or more objects from a WDS multicast namespace'
            cand apply 'Download a WIM image and apply one of its images to a folder (DISM on Windows, wimapply elsewhere), like wdsmcast /Apply-Image'
            cand info 'Ask the server to set up a session and print its description, without downloading'
            cand doctor 'Diagnose why multicast does not start: check each step from the server''s name to multicast data on the interface, and name the first that fails'
            cand watch 'Watch a session''s multicast without taking part in it (nothing is sent to the server)'
            cand images 'List the OS images the server offers (MS-WDSOSD image enumeration, authenticated RPC)'
            cand trace 'Read back a --trace file'
            cand serve 'Serve folders as multicast namespaces (reference server)'
            cand demo 'Serve a random file on loopback and download it with several clients at once'
            cand generate 'Write the shell completions or man pages (for packaging; they are committed)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'wdsmc;help;get'= {
        }
        &'wdsmc;help;apply'= {
        }
        &'wdsmc;help;info'= {
        }
        &'wdsmc;help;doctor'= {
        }
        &'wdsmc;help;watch'= {
        }
        &'wdsmc;help;images'= {
        }
        &'wdsmc;help;trace'= {
            cand summarize 'Per object: phase timings, loss, repairs and why the session ended'
        }
        &'wdsmc;help;trace;summarize'= {
        }
        &'wdsmc;help;serve'= {
        }
        &'wdsmc;help;demo'= {
        }
        &'wdsmc;help;generate'= {
        }
        &'wdsmc;help;help'= {
        }
    ]
    $completions[$command]
}
