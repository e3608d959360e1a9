use super::*;

fn err(bytes: &[u8]) -> PickleError {
    read(bytes, true).unwrap_err()
}

#[test]
fn a_global_off_the_allowlist_is_refused_by_name_before_any_call() {
    // pickle.dumps of os.system('ls') in protocol 2.
    let p = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.";
    assert_eq!(err(p), PickleError::Global("posix.system".into()));
    // The same through STACK_GLOBAL (protocol 4).
    let p = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R.";
    assert_eq!(err(p), PickleError::Global("builtins.eval".into()));
}

#[test]
fn memo_references_see_later_mutation() {
    // l = []; d = {'a': l}; l.append(1); pickled as EMPTY_LIST BINPUT 0 ...
    // then the dict refers back to it with BINGET 0 after APPENDS.
    let p = b"\x80\x02]q\x00(K\x01K\x02e}q\x01X\x01\x00\x00\x00ah\x00s\x86.";
    let v = read(p, false).unwrap();
    let Value::List(items) = v else {
        panic!("{v:?}")
    };
    assert_eq!(items[0], Value::List(vec![Value::Int(1), Value::Int(2)]));
    assert_eq!(
        items[1].get("a"),
        Some(&Value::List(vec![Value::Int(1), Value::Int(2)]))
    );
}

#[test]
fn shared_references_cannot_expand_without_bound() {
    // x0 = []; x(n+1) = [xn, xn]: 2^40 leaves once expanded.
    let mut p = b"\x80\x02]q\x00".to_vec();
    for i in 0..40u8 {
        p.extend_from_slice(&[b'h', i, b'h', i, 0x86, b'q', i + 1]);
    }
    p.push(b'.');
    assert!(matches!(err(&p), PickleError::TooLarge(_)), "{:?}", err(&p));
}

#[test]
fn truncated_and_garbage_input_is_an_error_not_a_panic() {
    let full = b"\x80\x02}q\x00X\x01\x00\x00\x00hK\x04s.";
    assert_eq!(read(full, false).unwrap().get("h"), Some(&Value::Int(4)));
    for cut in 0..full.len() {
        assert!(read(&full[..cut], false).is_err(), "cut at {cut}");
    }
    assert!(matches!(err(b"\xff"), PickleError::Malformed { .. }));
    // A declared string length far beyond the buffer.
    assert!(matches!(
        err(b"\x80\x02X\xff\xff\xff\x7f"),
        PickleError::Malformed { .. }
    ));
}

#[test]
fn persistent_ids_only_inside_checkpoints() {
    // _rebuild_tensor_v2(persistent_load(('storage', FloatStorage, '0', 'cpu', 3)), 0, (3,), (1,), False)
    let mut t = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(".to_vec();
    t.extend_from_slice(b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\n");
    t.extend_from_slice(b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x03tQ");
    t.extend_from_slice(b"K\x00K\x03\x85K\x01\x85\x89tR.");
    let v = read(&t, true).unwrap();
    let Value::Tensor(r) = v else { panic!("{v:?}") };
    assert_eq!((r.key.as_str(), r.numel, r.size.clone()), ("0", 3, vec![3]));
    assert!(read(&t, false).is_err());
}

#[test]
fn numpy_scalars_and_dtypes_decode() {
    // numpy.str_('-lo-80') as NeuralForecast 3.2 pickles MQLoss output names.
    let mut p = b"\x80\x02cnumpy._core.multiarray\nscalar\ncnumpy\ndtype\nX\x02\x00\x00\x00U6\x89\x88\x87R(K\x03X\x01\x00\x00\x00<NNNK\x18K\x04K\x08tbc_codecs\nencode\nX".to_vec();
    let text: Vec<u8> = "-lo-80".chars().flat_map(|c| [c as u8, 0, 0, 0]).collect();
    p.extend_from_slice(&(text.len() as u32).to_le_bytes());
    p.extend_from_slice(&text);
    p.extend_from_slice(b"X\x06\x00\x00\x00latin1\x86R\x86R.");
    assert_eq!(read(&p, false).unwrap(), Value::Str("-lo-80".into()));
}
