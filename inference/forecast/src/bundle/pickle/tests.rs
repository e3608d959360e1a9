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

/// `c<module>\n<name>\n` called with ('ls',): protocol 2.
fn call_of(module: &str, name: &str) -> Vec<u8> {
    let mut p = b"\x80\x02c".to_vec();
    p.extend_from_slice(format!("{module}\n{name}\n").as_bytes());
    p.extend_from_slice(b"X\x02\x00\x00\x00ls\x85R.");
    p
}

#[test]
fn pandas_and_pyarrow_admit_data_structures_only() {
    // Off the allowlist, and so refused by name: execution, I/O, evaluation,
    // attribute paths, and the top-level functions of pandas and pyarrow.
    for (module, name) in [
        ("os", "system"),
        ("posix", "system"),
        ("subprocess", "Popen"),
        ("subprocess", "check_output"),
        ("builtins", "eval"),
        ("builtins", "exec"),
        ("builtins", "getattr"),
        ("builtins", "__import__"),
        ("importlib", "import_module"),
        ("pandas", "read_pickle"),
        ("pandas", "eval"),
        ("pandas.io.pickle", "read_pickle"),
        ("pandas.core.computation.eval", "eval"),
        ("pandas.core.frame", "DataFrame.to_pickle"),
        ("pandas.util", "Appender"),
        ("pyarrow.parquet", "read_table"),
        ("pyarrow.fs", "LocalFileSystem"),
        ("pyarrow", "input_stream"),
        ("pandasx.core", "DataFrame"),
    ] {
        assert_eq!(
            err(&call_of(module, name)),
            PickleError::Global(format!("{module}.{name}")),
            "{module}.{name}"
        );
    }
    // Admitted as inert objects: the call is recorded, never made.
    let v = read(&call_of("pandas._libs.internals", "_unpickle_block"), false).unwrap();
    assert_eq!(
        v,
        Value::Object {
            class: "pandas._libs.internals._unpickle_block".into(),
            args: vec![Value::Str("ls".into())],
            state: None,
        }
    );
    // pyarrow.lib.py_buffer(bytearray(b'ab')), as pandas 3 pickles strings.
    let p = b"\x80\x02cpyarrow.lib\npy_buffer\nc__builtin__\nbytearray\nC\x02ab\x85R\x85R.";
    let Value::Object { class, args, .. } = read(p, false).unwrap() else {
        panic!()
    };
    assert_eq!(class, "pyarrow.lib.py_buffer");
    assert!(
        matches!(&args[0], Value::Object { class, args, .. } if class == "__builtin__.bytearray" && args == &[Value::Bytes(b"ab".to_vec())])
    );
    // pandas.DataFrame by NEWOBJ + BUILD keeps its state dict.
    let p = b"\x80\x02cpandas\nDataFrame\n)\x81}X\x04\x00\x00\x00_typX\x09\x00\x00\x00dataframesb.";
    let Value::Object { class, state, .. } = read(p, false).unwrap() else {
        panic!()
    };
    assert_eq!(class, "pandas.DataFrame");
    assert_eq!(
        state.unwrap().get("_typ"),
        Some(&Value::Str("dataframe".into()))
    );
}

#[test]
fn object_arrays_become_lists_and_frombuffer_arrays_decode() {
    // numpy.array(['a', 'b'], dtype=object), protocol 2.
    let mut p =
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R"
            .to_vec();
    p.extend_from_slice(b"(K\x01K\x02\x85cnumpy\ndtype\nX\x02\x00\x00\x00O8\x89\x88\x87R");
    p.extend_from_slice(b"(K\x03X\x01\x00\x00\x00|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb");
    p.extend_from_slice(b"\x89](X\x01\x00\x00\x00aX\x01\x00\x00\x00betb.");
    assert_eq!(
        read(&p, false).unwrap(),
        Value::List(vec![Value::Str("a".into()), Value::Str("b".into())])
    );
    // numpy.array([[1.5, -2.0]]) as protocol 5 pickles it: _frombuffer of a
    // bytearray, dtype, shape, order.
    let mut p = b"\x80\x05cnumpy._core.numeric\n_frombuffer\n(\x96".to_vec();
    p.extend_from_slice(&16u64.to_le_bytes());
    p.extend_from_slice(&1.5f64.to_le_bytes());
    p.extend_from_slice(&(-2.0f64).to_le_bytes());
    p.extend_from_slice(b"cnumpy\ndtype\nX\x02\x00\x00\x00f8\x89\x88\x87R");
    p.extend_from_slice(b"(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb");
    p.extend_from_slice(b"K\x01K\x02\x86X\x01\x00\x00\x00CtR.");
    let Value::Array(a) = read(&p, false).unwrap() else {
        panic!()
    };
    assert_eq!(
        (a.dtype.as_str(), a.shape.clone(), a.fortran),
        ("f8", vec![1, 2], false)
    );
    assert_eq!(&a.data[8..], &(-2.0f64).to_le_bytes());
}

#[test]
fn skipped_keys_are_read_but_not_expanded() {
    // {'h': 6, '_cs_df': DataFrame() whose state shares one list 2^40 times}
    let mut p =
        b"\x80\x02}(X\x01\x00\x00\x00hK\x06X\x06\x00\x00\x00_cs_dfcpandas\nDataFrame\n)\x81]q\x00"
            .to_vec();
    for i in 0..40u8 {
        // x(i+1) = (xi, xi), memoised, popped
        p.extend_from_slice(&[b'h', i, b'h', i, 0x86, b'q', i + 1, b'0']);
    }
    p.extend_from_slice(b"0h\x28bu.");
    assert!(matches!(err(&p), PickleError::TooLarge(_)));
    let v = read_skipping(&p, &["_cs_df"]).unwrap();
    assert_eq!(v.get("h"), Some(&Value::Int(6)));
    assert_eq!(
        v.get("_cs_df"),
        Some(&Value::Object {
            class: "pandas.DataFrame".into(),
            args: vec![],
            state: None
        })
    );
    // A refused global under a skipped key still refuses the pickle.
    let p = b"\x80\x02}(X\x06\x00\x00\x00_cs_dfcos\nsystem\nX\x02\x00\x00\x00ls\x85Ru.";
    assert_eq!(
        read_skipping(p, &["_cs_df"]).unwrap_err(),
        PickleError::Global("os.system".into())
    );
}
