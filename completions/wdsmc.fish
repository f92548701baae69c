# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_wdsmc_global_optspecs
    string join \n h/help V/version
end

function __fish_wdsmc_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_wdsmc_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_wdsmc_using_subcommand
    set -l cmd (__fish_wdsmc_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c wdsmc -n "__fish_wdsmc_needs_command" -s h -l help -d 'Print help'
complete -c wdsmc -n "__fish_wdsmc_needs_command" -s V -l version -d 'Print version'
complete -c wdsmc -n "__fish_wdsmc_needs_command" -f -a "get" -d 'Download one or more objects from a WDS multicast namespace'
complete -c wdsmc -n "__fish_wdsmc_needs_command" -f -a "apply" -d 'Download a WIM image and apply one of its images to a folder (DISM on Windows, wimapply elsewhere), like wdsmcast /Apply-Image'
complete -c wdsmc -n "__fish_wdsmc_needs_command" -f -a "info" -d 'Ask the server to set up a session and print its description, without downloading'
complete -c wdsmc -n "__fish_wdsmc_needs_command" -f -a "doctor" -d 'Diagnose why multicast does not start: check each step from the server\'s name to multicast data on the interface, and name the first that fails'
complete -c wdsmc -n "__fish_wdsmc_needs_command" -f -a "watch" -d 'Watch a session\'s multicast without taking part in it (nothing is sent to the server)'
complete -c wdsmc -n "__fish_wdsmc_needs_command" -f -a "images" -d 'List the OS images the server offers (MS-WDSOSD image enumeration, authenticated RPC)'
complete -c wdsmc -n "__fish_wdsmc_needs_command" -f -a "trace" -d 'Read back a --trace file'
complete -c wdsmc -n "__fish_wdsmc_needs_command" -f -a "serve" -d 'Serve folders as multicast namespaces (reference server)'
complete -c wdsmc -n "__fish_wdsmc_needs_command" -f -a "demo" -d 'Serve a random file on loopback and download it with several clients at once'
complete -c wdsmc -n "__fish_wdsmc_needs_command" -f -a "generate" -d 'Write the shell completions or man pages (for packaging; they are committed)'
complete -c wdsmc -n "__fish_wdsmc_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l server -d 'WDS server, as HOST or HOST:PORT (the port of UDP initiation, 5041 by default)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l namespace -d 'Multicast namespace on the server' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l interface -d 'Local interface for multicast, by address or name (e.g. 192.168.1.20 or eth0)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l start-timeout -d 'Limit for session start: initiation, join and first data each [e.g. 30s, 2m]' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l user -d 'Log in as this user ([DOMAIN\\]NAME or NAME@REALM) and initiate over RPC. The password comes from --password-file, else WDSMC_PASSWORD, else the credential cache (Kerberos), else a prompt on a terminal' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l password-file -d 'Read the password from the first line of FILE' -r -F
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l password -d 'The password itself (other users of this machine can see it; prefer --password-file or WDSMC_PASSWORD)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l auth -d 'Security provider of the RPC login [default: negotiate]' -r -f -a "negotiate\t'SPNEGO: Kerberos when a ticket can be had, NTLM otherwise'
ntlm\t'NTLMv2'
kerberos\t'Kerberos alone (DCE style, auth type 0x10)'
anonymous\t'Anonymous NTLM (no user, no password)'"
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l kdc -d 'Kerberos KDC (HOST[:PORT], port 88 by default). Without it: DNS SRV _kerberos._tcp.REALM, then the realm\'s own name' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l spn -d 'The WDS server\'s Kerberos service principal [default: host/<--server\'s name>]' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l rpc-port -d 'TCP port of the WDS RPC listener' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l initiation -d 'How to initiate: auto is rpc when --user or --auth is given, udp otherwise' -r -f -a "auto\t''
rpc\t'Authenticated, over RPC (TCP 5040 or the endpoint mapper\'s answer)'
udp\t'Unauthenticated, over UDP 5041'"
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l object -l content -d 'Object (content) to download; repeat to download several at once' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -s o -l output -d 'Output file, or `-` for stdout; a folder when several objects are given. Default: the object\'s file name in the current folder' -r -F
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l timeout -d 'Give up after this long without data from the server [e.g. 30s]' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l progress -d 'Progress display on stderr' -r -f -a "auto\t'A progress bar when stderr is a terminal, nothing otherwise'
bar\t'A progress bar; plain lines when stderr is not a terminal'
plain\t'One plain line about every 2 seconds'
json\t'JSON lines (schema wdsmc.progress/1)'
none\t'No progress output'"
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l sha256 -d 'Expected SHA-256 of the object (64 hex digits); a mismatch deletes the file (exit 8)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l trace -d 'Write one line per packet sent or received to FILE' -r -F
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l cache-size -d 'Received data held in memory before it is written [e.g. 32MiB, 512k, 1G]' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l endpoint-mapper -d 'Ask the endpoint mapper (TCP 135) for the RPC listener\'s port'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l pre-os -d 'Running pre-OS (WinPE): ask the server for checksum-only packet security'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l keep-partial -d 'Keep the partial file when the download fails or is cancelled'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -l force -d 'Replace an existing output file'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -s q -l quiet -d 'No start and summary lines, no progress'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -s v -l verbose -d 'More detail: notices and full statistics; twice: every packet on stderr'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand get" -s V -l version -d 'Print version'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l server -d 'WDS server, as HOST or HOST:PORT (the port of UDP initiation, 5041 by default)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l namespace -d 'Multicast namespace on the server' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l interface -d 'Local interface for multicast, by address or name (e.g. 192.168.1.20 or eth0)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l start-timeout -d 'Limit for session start: initiation, join and first data each [e.g. 30s, 2m]' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l user -d 'Log in as this user ([DOMAIN\\]NAME or NAME@REALM) and initiate over RPC. The password comes from --password-file, else WDSMC_PASSWORD, else the credential cache (Kerberos), else a prompt on a terminal' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l password-file -d 'Read the password from the first line of FILE' -r -F
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l password -d 'The password itself (other users of this machine can see it; prefer --password-file or WDSMC_PASSWORD)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l auth -d 'Security provider of the RPC login [default: negotiate]' -r -f -a "negotiate\t'SPNEGO: Kerberos when a ticket can be had, NTLM otherwise'
ntlm\t'NTLMv2'
kerberos\t'Kerberos alone (DCE style, auth type 0x10)'
anonymous\t'Anonymous NTLM (no user, no password)'"
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l kdc -d 'Kerberos KDC (HOST[:PORT], port 88 by default). Without it: DNS SRV _kerberos._tcp.REALM, then the realm\'s own name' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l spn -d 'The WDS server\'s Kerberos service principal [default: host/<--server\'s name>]' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l rpc-port -d 'TCP port of the WDS RPC listener' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l initiation -d 'How to initiate: auto is rpc when --user or --auth is given, udp otherwise' -r -f -a "auto\t''
rpc\t'Authenticated, over RPC (TCP 5040 or the endpoint mapper\'s answer)'
udp\t'Unauthenticated, over UDP 5041'"
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l object -l content -d 'The image (a WIM) to download' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l index -d 'Image index inside the WIM to apply' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l to -d 'Folder to apply the image to (a mounted target volume, e.g. /mnt or W:\\)' -r -F
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l image-cache -d 'Folder for the downloaded image while it is applied [default: inside --to]' -r -F
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l timeout -d 'Give up after this long without data from the server [e.g. 30s]' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l progress -d 'Progress display on stderr' -r -f -a "auto\t'A progress bar when stderr is a terminal, nothing otherwise'
bar\t'A progress bar; plain lines when stderr is not a terminal'
plain\t'One plain line about every 2 seconds'
json\t'JSON lines (schema wdsmc.progress/1)'
none\t'No progress output'"
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l sha256 -d 'Expected SHA-256 of the object (64 hex digits); a mismatch deletes the file (exit 8)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l trace -d 'Write one line per packet sent or received to FILE' -r -F
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l cache-size -d 'Received data held in memory before it is written [e.g. 32MiB, 512k, 1G]' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l endpoint-mapper -d 'Ask the endpoint mapper (TCP 135) for the RPC listener\'s port'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l pre-os -d 'Running pre-OS (WinPE): ask the server for checksum-only packet security'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -l keep-image -d 'Keep the downloaded image after applying it (and after a failure)'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -s q -l quiet -d 'No start and summary lines, no progress'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -s v -l verbose -d 'More detail: notices and full statistics; twice: every packet on stderr'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand apply" -s V -l version -d 'Print version'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand info" -l server -d 'WDS server, as HOST or HOST:PORT (the port of UDP initiation, 5041 by default)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand info" -l namespace -d 'Multicast namespace on the server' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand info" -l interface -d 'Local interface for multicast, by address or name (e.g. 192.168.1.20 or eth0)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand info" -l start-timeout -d 'Limit for session start: initiation, join and first data each [e.g. 30s, 2m]' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand info" -l user -d 'Log in as this user ([DOMAIN\\]NAME or NAME@REALM) and initiate over RPC. The password comes from --password-file, else WDSMC_PASSWORD, else the credential cache (Kerberos), else a prompt on a terminal' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand info" -l password-file -d 'Read the password from the first line of FILE' -r -F
complete -c wdsmc -n "__fish_wdsmc_using_subcommand info" -l password -d 'The password itself (other users of this machine can see it; prefer --password-file or WDSMC_PASSWORD)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand info" -l auth -d 'Security provider of the RPC login [default: negotiate]' -r -f -a "negotiate\t'SPNEGO: Kerberos when a ticket can be had, NTLM otherwise'
ntlm\t'NTLMv2'
kerberos\t'Kerberos alone (DCE style, auth type 0x10)'
anonymous\t'Anonymous NTLM (no user, no password)'"
complete -c wdsmc -n "__fish_wdsmc_using_subcommand info" -l kdc -d 'Kerberos KDC (HOST[:PORT], port 88 by default). Without it: DNS SRV _kerberos._tcp.REALM, then the realm\'s own name' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand info" -l spn -d 'The WDS server\'s Kerberos service principal [default: host/<--server\'s name>]' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand info" -l rpc-port -d 'TCP port of the WDS RPC listener' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand info" -l initiation -d 'How to initiate: auto is rpc when --user or --auth is given, udp otherwise' -r -f -a "auto\t''
rpc\t'Authenticated, over RPC (TCP 5040 or the endpoint mapper\'s answer)'
udp\t'Unauthenticated, over UDP 5041'"
complete -c wdsmc -n "__fish_wdsmc_using_subcommand info" -l object -l content -d 'Object (content) to describe' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand info" -l endpoint-mapper -d 'Ask the endpoint mapper (TCP 135) for the RPC listener\'s port'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand info" -l pre-os -d 'Running pre-OS (WinPE): ask the server for checksum-only packet security'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand info" -l json -d 'Print the description as one JSON object'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand info" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand info" -s V -l version -d 'Print version'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand doctor" -l server -d 'WDS server, as HOST or HOST:PORT (the port of UDP initiation, 5041 by default)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand doctor" -l namespace -d 'Multicast namespace of the session to try (with --object; without them the checks stop after the ports)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand doctor" -l object -l content -d 'Object of the session to try' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand doctor" -l interface -d 'Local interface for multicast, by address or name' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand doctor" -l multicast-wait -d 'How long multicast data may take to arrive after the JOINACK' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand doctor" -l sample -d 'How long to receive data for the loss figure' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand doctor" -l wait -d 'How long to wait for an answer on UDP, for TCP connects, the login and the JOINACK' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand doctor" -l user -d 'Log in as this user ([DOMAIN\\]NAME or NAME@REALM) and initiate over RPC. The password comes from --password-file, else WDSMC_PASSWORD, else the credential cache (Kerberos), else a prompt on a terminal' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand doctor" -l password-file -d 'Read the password from the first line of FILE' -r -F
complete -c wdsmc -n "__fish_wdsmc_using_subcommand doctor" -l password -d 'The password itself (other users of this machine can see it; prefer --password-file or WDSMC_PASSWORD)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand doctor" -l auth -d 'Security provider of the RPC login [default: negotiate]' -r -f -a "negotiate\t'SPNEGO: Kerberos when a ticket can be had, NTLM otherwise'
ntlm\t'NTLMv2'
kerberos\t'Kerberos alone (DCE style, auth type 0x10)'
anonymous\t'Anonymous NTLM (no user, no password)'"
complete -c wdsmc -n "__fish_wdsmc_using_subcommand doctor" -l kdc -d 'Kerberos KDC (HOST[:PORT], port 88 by default). Without it: DNS SRV _kerberos._tcp.REALM, then the realm\'s own name' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand doctor" -l spn -d 'The WDS server\'s Kerberos service principal [default: host/<--server\'s name>]' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand doctor" -l rpc-port -d 'TCP port of the WDS RPC listener' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand doctor" -l initiation -d 'How to initiate: auto is rpc when --user or --auth is given, udp otherwise' -r -f -a "auto\t''
rpc\t'Authenticated, over RPC (TCP 5040 or the endpoint mapper\'s answer)'
udp\t'Unauthenticated, over UDP 5041'"
complete -c wdsmc -n "__fish_wdsmc_using_subcommand doctor" -l json -d 'One JSON object per step on stdout'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand doctor" -l endpoint-mapper -d 'Ask the endpoint mapper (TCP 135) for the RPC listener\'s port'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand doctor" -l pre-os -d 'Running pre-OS (WinPE): ask the server for checksum-only packet security'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -l group -d 'Watch this group directly (ADDR:PORT); nothing at all is sent' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -l server -d 'Find the group through initiation at this server (only the initiation request is sent; no JOIN)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -l namespace -d 'Multicast namespace (with --server)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -l object -l content -d 'Object (with --server)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -l interface -d 'Local interface to join the group on, by address or name' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -l interval -d 'Seconds between reports' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -l duration -d 'Stop after this long [default: until Ctrl-C]' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -l idle-exit -d 'Stop once the session has been silent this long after data flowed' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -l user -d 'Log in as this user ([DOMAIN\\]NAME or NAME@REALM) and initiate over RPC. The password comes from --password-file, else WDSMC_PASSWORD, else the credential cache (Kerberos), else a prompt on a terminal' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -l password-file -d 'Read the password from the first line of FILE' -r -F
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -l password -d 'The password itself (other users of this machine can see it; prefer --password-file or WDSMC_PASSWORD)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -l auth -d 'Security provider of the RPC login [default: negotiate]' -r -f -a "negotiate\t'SPNEGO: Kerberos when a ticket can be had, NTLM otherwise'
ntlm\t'NTLMv2'
kerberos\t'Kerberos alone (DCE style, auth type 0x10)'
anonymous\t'Anonymous NTLM (no user, no password)'"
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -l kdc -d 'Kerberos KDC (HOST[:PORT], port 88 by default). Without it: DNS SRV _kerberos._tcp.REALM, then the realm\'s own name' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -l spn -d 'The WDS server\'s Kerberos service principal [default: host/<--server\'s name>]' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -l rpc-port -d 'TCP port of the WDS RPC listener' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -l initiation -d 'How to initiate: auto is rpc when --user or --auth is given, udp otherwise' -r -f -a "auto\t''
rpc\t'Authenticated, over RPC (TCP 5040 or the endpoint mapper\'s answer)'
udp\t'Unauthenticated, over UDP 5041'"
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -l json -d 'JSON lines on stdout (one per report, and a summary at the end)'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -l endpoint-mapper -d 'Ask the endpoint mapper (TCP 135) for the RPC listener\'s port'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -l pre-os -d 'Running pre-OS (WinPE): ask the server for checksum-only packet security'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand watch" -s V -l version -d 'Print version'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand images" -l server -d 'WDS server, as HOST (a :PORT suffix is the UDP port and is ignored)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand images" -l timeout -d 'Limit for connect, login and call' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand images" -l user -d 'Log in as this user ([DOMAIN\\]NAME or NAME@REALM) and initiate over RPC. The password comes from --password-file, else WDSMC_PASSWORD, else the credential cache (Kerberos), else a prompt on a terminal' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand images" -l password-file -d 'Read the password from the first line of FILE' -r -F
complete -c wdsmc -n "__fish_wdsmc_using_subcommand images" -l password -d 'The password itself (other users of this machine can see it; prefer --password-file or WDSMC_PASSWORD)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand images" -l auth -d 'Security provider of the RPC login [default: negotiate]' -r -f -a "negotiate\t'SPNEGO: Kerberos when a ticket can be had, NTLM otherwise'
ntlm\t'NTLMv2'
kerberos\t'Kerberos alone (DCE style, auth type 0x10)'
anonymous\t'Anonymous NTLM (no user, no password)'"
complete -c wdsmc -n "__fish_wdsmc_using_subcommand images" -l kdc -d 'Kerberos KDC (HOST[:PORT], port 88 by default). Without it: DNS SRV _kerberos._tcp.REALM, then the realm\'s own name' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand images" -l spn -d 'The WDS server\'s Kerberos service principal [default: host/<--server\'s name>]' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand images" -l rpc-port -d 'TCP port of the WDS RPC listener' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand images" -l initiation -d 'How to initiate: auto is rpc when --user or --auth is given, udp otherwise' -r -f -a "auto\t''
rpc\t'Authenticated, over RPC (TCP 5040 or the endpoint mapper\'s answer)'
udp\t'Unauthenticated, over UDP 5041'"
complete -c wdsmc -n "__fish_wdsmc_using_subcommand images" -l json -d 'Print the list as one JSON object'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand images" -l endpoint-mapper -d 'Ask the endpoint mapper (TCP 135) for the RPC listener\'s port'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand images" -l pre-os -d 'Running pre-OS (WinPE): ask the server for checksum-only packet security'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand images" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand images" -s V -l version -d 'Print version'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand trace; and not __fish_seen_subcommand_from summarize help" -s h -l help -d 'Print help'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand trace; and not __fish_seen_subcommand_from summarize help" -s V -l version -d 'Print version'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand trace; and not __fish_seen_subcommand_from summarize help" -f -a "summarize" -d 'Per object: phase timings, loss, repairs and why the session ended'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand trace; and not __fish_seen_subcommand_from summarize help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand trace; and __fish_seen_subcommand_from summarize" -l json -d 'One JSON object per object on stdout'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand trace; and __fish_seen_subcommand_from summarize" -s h -l help -d 'Print help'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand trace; and __fish_seen_subcommand_from summarize" -s V -l version -d 'Print version'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand trace; and __fish_seen_subcommand_from help" -f -a "summarize" -d 'Per object: phase timings, loss, repairs and why the session ended'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand trace; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -l namespace -d 'Namespace to serve, as NAME=DIR; repeat for several' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -l listen -d 'Address to listen and send multicast on' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -l msi-port -d 'UDP port for session initiation requests' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -l group-range -d 'Multicast groups given to sessions, as a CIDR block (IPv4 or IPv6)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -l port-range -d 'UDP ports given to sessions, inclusive' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -l block-size -d 'Block size in bytes [e.g. 8192, 16k]' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -l max-rate -d 'Cap each session\'s data rate [e.g. 100MiB/s, 10M]' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -l auto-disconnect-below -d 'Kick clients whose progress stays below RATE' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -l ttl -d 'Multicast TTL (hop limit)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -l log-format -d 'Log lines as human text or JSON' -r -f -a "human\t''
json\t''"
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -l session-timeout -d 'End a session after this long without any client packet' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -l accounts -d 'Serve authenticated initiation over RPC to the users in FILE (lines [DOMAIN\\]NAME:PASSWORD, # comments)' -r -F
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -l keytab -d 'Also accept Kerberos logins (raw and inside SPNEGO) with the service keys in this keytab' -r -F
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -l spn -d 'The service principal Kerberos tickets must be for (SERVICE/HOST[@REALM]) [default: any principal in --keytab]' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -l rpc-port -d 'TCP port of the RPC listener (with --accounts or --keytab)' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -l security-mode -d 'Packet security for authenticated clients that are not pre-OS: checksum, hash (HMAC both ways) or sign (the server signs, clients hash)' -r -f -a "checksum\t''
hash\t''
sign\t''"
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -l sign-key-bits -d 'Bits of the RSA key made at start for --security-mode sign' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -l require-auth -d 'Refuse UDP initiation (with an error reply): every client must log in'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -l allow-anonymous -d 'Accept anonymous NTLM logins'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -s h -l help -d 'Print help'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand serve" -s V -l version -d 'Print version'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand demo" -l size -d 'Size of the random file to serve' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand demo" -l clients -d 'Number of clients downloading at once' -r
complete -c wdsmc -n "__fish_wdsmc_using_subcommand demo" -l progress -d 'Progress display on stderr' -r -f -a "auto\t'A progress bar when stderr is a terminal, nothing otherwise'
bar\t'A progress bar; plain lines when stderr is not a terminal'
plain\t'One plain line about every 2 seconds'
json\t'JSON lines (schema wdsmc.progress/1)'
none\t'No progress output'"
complete -c wdsmc -n "__fish_wdsmc_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand demo" -s V -l version -d 'Print version'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand generate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand generate" -s V -l version -d 'Print version'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand help; and not __fish_seen_subcommand_from get apply info doctor watch images trace serve demo generate help" -f -a "get" -d 'Download one or more objects from a WDS multicast namespace'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand help; and not __fish_seen_subcommand_from get apply info doctor watch images trace serve demo generate help" -f -a "apply" -d 'Download a WIM image and apply one of its images to a folder (DISM on Windows, wimapply elsewhere), like wdsmcast /Apply-Image'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand help; and not __fish_seen_subcommand_from get apply info doctor watch images trace serve demo generate help" -f -a "info" -d 'Ask the server to set up a session and print its description, without downloading'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand help; and not __fish_seen_subcommand_from get apply info doctor watch images trace serve demo generate help" -f -a "doctor" -d 'Diagnose why multicast does not start: check each step from the server\'s name to multicast data on the interface, and name the first that fails'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand help; and not __fish_seen_subcommand_from get apply info doctor watch images trace serve demo generate help" -f -a "watch" -d 'Watch a session\'s multicast without taking part in it (nothing is sent to the server)'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand help; and not __fish_seen_subcommand_from get apply info doctor watch images trace serve demo generate help" -f -a "images" -d 'List the OS images the server offers (MS-WDSOSD image enumeration, authenticated RPC)'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand help; and not __fish_seen_subcommand_from get apply info doctor watch images trace serve demo generate help" -f -a "trace" -d 'Read back a --trace file'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand help; and not __fish_seen_subcommand_from get apply info doctor watch images trace serve demo generate help" -f -a "serve" -d 'Serve folders as multicast namespaces (reference server)'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand help; and not __fish_seen_subcommand_from get apply info doctor watch images trace serve demo generate help" -f -a "demo" -d 'Serve a random file on loopback and download it with several clients at once'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand help; and not __fish_seen_subcommand_from get apply info doctor watch images trace serve demo generate help" -f -a "generate" -d 'Write the shell completions or man pages (for packaging; they are committed)'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand help; and not __fish_seen_subcommand_from get apply info doctor watch images trace serve demo generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c wdsmc -n "__fish_wdsmc_using_subcommand help; and __fish_seen_subcommand_from trace" -f -a "summarize" -d 'Per object: phase timings, loss, repairs and why the session ended'
