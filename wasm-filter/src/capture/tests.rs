use super::*;

fn capture() -> Capture {
    Capture::new(
        7,
        Backend::Rust,
        "req-1".into(),
        vec![("x-a".into(), "1".into())],
    )
}

#[test]
fn body_fits_up_to_the_cap_inclusive() {
    let mut c = capture();
    assert!(c.fits(10, 10));
    assert!(!c.fits(11, 10));
    c.push(b"12345");
    assert!(c.fits(5, 10));
    assert!(!c.fits(6, 10));
    assert!(!c.fits(usize::MAX, usize::MAX - 1), "no overflow");
}

#[test]
fn start_carries_the_request_and_leaves_an_empty_body_for_the_response() {
    let mut c = capture();
    c.push(b"ab");
    c.push(b"cd");
    assert_eq!(
        c.start(),
        Message::Start {
            id: 7,
            target: Backend::Rust,
            request_id: "req-1".into(),
            headers: vec![("x-a".into(), "1".into())],
            body: b"abcd".to_vec(),
        }
    );
    c.push(b"{}");
    assert_eq!(
        c.primary(200),
        Message::Primary {
            id: 7,
            status: 200,
            body: b"{}".to_vec()
        }
    );
}

#[test]
fn abandon_tells_the_root_only_after_the_start_went_out() {
    let mut c = capture();
    assert_eq!(c.abandon(SkipReason::Abandoned), None);
    for stage in [Stage::AwaitingPrimary, Stage::Response { status: 200 }] {
        c.stage = stage;
        assert_eq!(
            c.abandon(SkipReason::BodyTooLarge),
            Some(Message::Abandon {
                id: 7,
                reason: SkipReason::BodyTooLarge
            })
        );
    }
}
