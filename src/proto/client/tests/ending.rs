//! How a session ends: completion, cancel, timeouts, KICK and DEMOTE.

use super::*;

#[test]
fn completion_sends_leave_complete_after_bounded_delay() {
    let mut h = Harness::new(250);
    h.join(10, 80);
    assert_eq!(
        h.odata(1, 1, 0, 3),
        Some((3, 200, block_payload(250, 3)[13..].to_vec()))
    );
    assert_eq!(
        h.odata(2, 1, 0, 1).map(|d| (d.0, d.1, d.2.len())),
        Some((1, 0, 100))
    );
    let last = h.odata(3, 1, 0, 2);
    assert_eq!(last.map(|d| (d.0, d.1)), Some((2, 100)));
    assert_eq!(h.client.stats().bytes_received, 250);
    assert!(h.events().is_empty(), "Finished waits for the LEAVE");
    let done_at = h.now;
    let (_, bytes) = h
        .next_sent_within(Duration::from_millis(80))
        .expect("a LEAVE");
    assert!(h.now - done_at <= Duration::from_millis(80));
    let (session, leave) = leave_of(&bytes);
    assert_eq!(session, SESSION_ID);
    assert_eq!(leave.client_id, CLIENT_ID);
    assert_eq!(leave.reason, LeaveReason::Complete);
    assert_eq!(h.events(), [ClientEvent::Finished(ClientOutcome::Complete)]);
    assert!(h.client.is_finished());
    // Nothing more happens.
    assert!(h.odata(4, 1, 0, 1).is_none());
    h.advance(Duration::from_secs(60));
    assert!(h.sent().is_empty() && h.events().is_empty());
}

#[test]
fn a_master_that_completes_stops_being_master_as_it_leaves() {
    // It no longer hears the server name the next master, so without this its last report
    // (and a progress bar) would say "master" beside the client that really is.
    let mut h = Harness::new(250);
    h.join(10, 80);
    h.odata(1, 1, CLIENT_ID, 3);
    assert_eq!(h.events(), [ClientEvent::MasterChanged { is_master: true }]);
    h.advance(Duration::from_millis(30));
    h.odata(2, 1, CLIENT_ID, 1);
    h.odata(3, 1, CLIENT_ID, 2);
    assert!(h.client.stats().is_master, "still master until it leaves");
    h.sent();
    let (_, bytes) = h
        .next_sent_within(Duration::from_millis(80))
        .expect("a LEAVE");
    assert_eq!(leave_of(&bytes).1.reason, LeaveReason::Complete);
    assert_eq!(
        h.events(),
        [
            ClientEvent::MasterChanged { is_master: false },
            ClientEvent::Finished(ClientOutcome::Complete)
        ]
    );
    assert!(!h.client.stats().is_master);
    assert!(h.client.stats().time_as_master >= Duration::from_millis(30));
}

#[test]
fn empty_content_completes_right_after_joinack() {
    let mut h = Harness::new(0);
    h.sent();
    h.feed(Body::JoinAck(mt::JoinAck {
        client_id: CLIENT_ID,
        min_nack_backoff: 0,
        max_nack_backoff: 0,
        rtt: 0,
        client_time: 0,
    }));
    assert_eq!(opcodes(&h.sent()), [mt::OpCode::Qcr]);
    let at = h.now;
    let (_, bytes) = h
        .next_sent_within(Duration::from_millis(200))
        .expect("a LEAVE");
    assert!(h.now - at <= Duration::from_millis(MAX_LEAVE_DELAY_MS));
    assert_eq!(leave_of(&bytes).1.reason, LeaveReason::Complete);
    assert_eq!(
        h.events(),
        [
            ClientEvent::Joined {
                client_id: CLIENT_ID
            },
            ClientEvent::Finished(ClientOutcome::Complete)
        ]
    );
}

#[test]
fn cancel_sends_leave_cancelled() {
    let mut h = Harness::new(1000);
    h.join(0, 0);
    h.client.cancel(h.now);
    let (_, bytes) = h
        .next_sent_within(Duration::from_millis(200))
        .expect("a LEAVE");
    assert_eq!(leave_of(&bytes).1.reason, LeaveReason::Cancelled);
    assert_eq!(
        h.events(),
        [ClientEvent::Finished(ClientOutcome::Cancelled)]
    );
    assert!(h.client.is_finished());
    h.client.cancel(h.now);
    assert!(h.events().is_empty(), "Finished only once");
}

#[test]
fn cancel_before_joinack_sends_no_leave() {
    let mut h = Harness::new(1000);
    h.sent();
    h.client.cancel(h.now);
    assert!(h.sent().is_empty());
    assert_eq!(
        h.events(),
        [ClientEvent::Finished(ClientOutcome::Cancelled)]
    );
    assert!(h.client.is_finished());
}

#[test]
fn inactivity_sends_leave_inactive() {
    let mut h = Harness::new(1000);
    h.join(0, 0);
    h.odata(1, 1, 0, 1);
    h.advance(Duration::from_secs(20));
    h.feed(spm(1, 0, 0, 0, 1, 1));
    h.advance(Duration::from_millis(29_999));
    assert!(h.events().is_empty(), "the SPM restarted the timer");
    h.advance(Duration::from_millis(1));
    let leave = h
        .sent()
        .into_iter()
        .find(|b| matches!(decode(b).body, Body::Leave(_)));
    let leave = match leave {
        Some(bytes) => bytes,
        None => {
            h.next_sent_within(Duration::from_millis(200))
                .expect("a LEAVE")
                .1
        }
    };
    assert_eq!(leave_of(&leave).1.reason, LeaveReason::Inactive);
    assert_eq!(
        h.events(),
        [ClientEvent::Finished(ClientOutcome::TimedOut(
            Phase::Inactivity
        ))]
    );
}

#[test]
fn no_first_data_times_out() {
    let mut h = Harness::new(1000);
    h.join(0, 0);
    h.advance(Duration::from_millis(9_999));
    assert!(h.events().is_empty());
    h.advance(Duration::from_millis(201));
    let sent = h.sent();
    assert_eq!(
        leave_of(sent.last().unwrap()).1.reason,
        LeaveReason::Inactive
    );
    assert_eq!(
        h.events(),
        [ClientEvent::Finished(ClientOutcome::TimedOut(
            Phase::FirstData
        ))]
    );
}

#[test]
fn kick_naming_us_ends_the_session_with_its_reason() {
    for (byte, reason) in [
        (0, KickReason::PolicyNotMet),
        (1, KickReason::Fallback),
        (2, KickReason::Fail),
        (9, KickReason::Other(9)),
    ] {
        let mut h = Harness::new(1000);
        h.join(0, 0);
        h.feed(Body::Kick(mt::Kick {
            clients: vec![(CLIENT_ID + 1, KickReason::Fail)],
        }));
        assert!(h.events().is_empty(), "someone else's KICK");
        h.feed(Body::Kick(mt::Kick {
            clients: vec![
                (3, KickReason::Fail),
                (CLIENT_ID, KickReason::from_u8(byte)),
            ],
        }));
        assert_eq!(
            h.events(),
            [ClientEvent::Finished(ClientOutcome::Kicked(reason))]
        );
        assert!(h.sent().is_empty());
        assert!(h.client.is_finished());
    }
}

#[test]
fn demote_leaves_the_old_session_and_joins_the_lower_one() {
    let mut h = Harness::new(1000);
    h.join(0, 0);
    h.feed(spm(1, CLIENT_ID, 0, 0, 0, 0));
    h.odata(1, 1, CLIENT_ID, 1);
    h.odata(2, 1, CLIENT_ID, 2);
    h.sent();
    h.events();
    let lower_server = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 4012);
    h.feed(Body::Demote(mt::Demote {
        lower_session_id: 0x1234,
        multicast_addr: "239.255.1.2".parse().unwrap(),
        multicast_port: 5001,
        unicast_addr: lower_server.ip(),
        unicast_port: lower_server.port(),
        clients: vec![3, CLIENT_ID],
    }));
    let expected = SessionParams {
        session_id: 0x1234,
        group: "239.255.1.2:5001".parse().unwrap(),
        server: lower_server,
        ..params(1000)
    };
    assert_eq!(
        h.events(),
        [
            ClientEvent::MasterChanged { is_master: false },
            ClientEvent::Demoted {
                params: expected.clone()
            }
        ]
    );
    assert_eq!(h.client.params(), &expected);
    let mut buf = Vec::new();
    assert_eq!(
        h.client.poll_transmit(&mut buf).map(|t| t.destination),
        Some(lower_server)
    );
    let join = decode(&buf);
    assert_eq!(
        (join.session_id, join.body.opcode()),
        (0x1234, mt::OpCode::Join)
    );
    // The LEAVE for the old session follows within its delay, to the old server.
    h.advance(Duration::from_millis(MAX_LEAVE_DELAY_MS));
    let mut leaves = Vec::new();
    loop {
        buf.clear();
        let Some(to) = h.client.poll_transmit(&mut buf).map(|t| t.destination) else {
            break;
        };
        if let Body::Leave(leave) = decode(&buf).body {
            leaves.push((to, decode(&buf).session_id, leave));
        }
    }
    assert_eq!(
        leaves,
        [(
            server_addr(),
            SESSION_ID,
            mt::Leave {
                client_id: CLIENT_ID,
                reason: LeaveReason::Cancelled
            }
        )]
    );
    assert_eq!(h.client.stats().client_id, None);
    // Old-session packets no longer count; the lower session's JOINACK does.
    let drops = h.client.stats().other_drops;
    h.odata(3, 1, 0, 3);
    assert_eq!(h.client.stats().other_drops, drops + 1);
    h.session_id = 0x1234;
    h.feed(Body::JoinAck(mt::JoinAck {
        client_id: 55,
        min_nack_backoff: 0,
        max_nack_backoff: 0,
        rtt: 0,
        client_time: 0,
    }));
    assert_eq!(h.events(), [ClientEvent::Joined { client_id: 55 }]);
    // Blocks received before the DEMOTE stay received.
    assert_eq!(h.client.missing_block_ranges(64), [(3, 10)]);
    assert!(h.odata(1, 1, 0, 1).is_none());
    assert_eq!(h.client.stats().duplicate_blocks, 1);
    assert!(h.odata(2, 1, 0, 3).is_some());
}

#[test]
fn demote_to_another_host_or_a_unicast_group_is_ignored() {
    let mut h = Harness::new(1000);
    h.join(0, 0);
    h.sent();
    h.events();
    for (group, server) in [
        ("239.255.1.2", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))),
        ("10.0.0.1", IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ("ff15::1", IpAddr::V4(Ipv4Addr::LOCALHOST)),
    ] {
        let drops = h.client.stats().other_drops;
        h.feed(Body::Demote(mt::Demote {
            lower_session_id: 0x1234,
            multicast_addr: group.parse().unwrap(),
            multicast_port: 5001,
            unicast_addr: server,
            unicast_port: 4012,
            clients: vec![CLIENT_ID],
        }));
        assert_eq!(h.client.stats().other_drops, drops + 1, "{group} {server}");
        assert!(h.events().is_empty());
        assert!(h.sent().is_empty(), "no LEAVE, no JOIN elsewhere");
    }
    assert_eq!(h.client.params().session_id, params(1000).session_id);
}

#[test]
fn cancel_right_after_demote_still_leaves_both_sessions() {
    let mut h = Harness::new(1000);
    h.join(0, 0);
    h.feed(Body::Demote(mt::Demote {
        lower_session_id: 0x1234,
        multicast_addr: "239.255.1.2".parse().unwrap(),
        multicast_port: 5001,
        unicast_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        unicast_port: 4011,
        clients: vec![CLIENT_ID],
    }));
    h.session_id = 0x1234;
    h.join(0, 0);
    h.client.cancel(h.now);
    h.advance(Duration::from_millis(MAX_LEAVE_DELAY_MS));
    let mut leaves: Vec<_> = h
        .sent()
        .iter()
        .filter(|b| matches!(decode(b).body, Body::Leave(_)))
        .map(|b| leave_of(b))
        .collect();
    leaves.sort_by_key(|(session, _)| *session);
    assert_eq!(leaves.len(), 2);
    assert_eq!(leaves[0].0, 0x1234);
    assert_eq!(leaves[1].0, SESSION_ID);
    assert!(
        leaves
            .iter()
            .all(|(_, l)| l.reason == LeaveReason::Cancelled)
    );
    assert_eq!(
        h.events(),
        [ClientEvent::Finished(ClientOutcome::Cancelled)]
    );
    assert!(h.client.is_finished());
}

#[test]
fn odata_client_id_names_the_master() {
    let mut h = Harness::new(1000);
    h.join(0, 0);
    h.odata(1, 1, CLIENT_ID, 1);
    assert_eq!(h.events(), [ClientEvent::MasterChanged { is_master: true }]);
    assert_eq!(opcodes(&h.sent()), [mt::OpCode::Ack]);
    h.odata(2, 1, 0, 2);
    assert_eq!(
        h.events(),
        [ClientEvent::MasterChanged { is_master: false }]
    );
    assert!(h.sent().is_empty());
}
