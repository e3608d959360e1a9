//! A pickle reader that executes nothing: the bytes NeuralForecast before 3.3
//! wrote (`configuration.pkl`, `alias_to_model.pkl`, a checkpoint's
//! `data.pkl`) become a [`Value`] tree.
//!
//! Python's unpickler calls whatever `GLOBAL` names. This one calls nothing:
//! every global is looked up in [`ALLOWLIST`] when its opcode is read, and
//! any other is refused there, by name (`os.system` never gets as far as a
//! `REDUCE`). The globals it does admit are interpreted structurally:
//! `OrderedDict()` is an empty dict, `_rebuild_tensor_v2(...)` a reference to
//! storage bytes, `numpy.dtype('f4')` a dtype, a loss or scaler class an
//! [`Value::Object`] holding its constructor arguments and `__dict__`.
//!
//! The conformity scores a bundle fitted with `prediction_intervals` holds
//! are a pickled pandas DataFrame: pandas' and pyarrow's data-structure
//! globals (frames, block managers, indexes, extension arrays, arrow
//! buffers) are admitted by module (see `inert_data_global`) and become
//! inert [`Value::Object`]s like the classes above, which
//! `super::conformal_pickle` reads by structure. Nothing of pandas runs.
//!
//! Why not a crate: serde-pickle keeps no global names and no persistent ids
//! (so neither the allowlist nor the storages can be expressed), and
//! pytorch-reader keeps tensors but drops every other object's state (the
//! loss's `output_names`). The opcode set is small and fixed; the allowlist
//! is ours either way.
//!
//! Python's memo holds references: a list stored with `BINPUT` and filled
//! later by `APPENDS` is seen filled by a later `BINGET`. Values live in an
//! arena and the stack and memo hold indices, so that is true here too. The
//! tree is built at `STOP` under a node budget, so a pickle that shares one
//! list many times over ("billion laughs") is refused, not expanded.

use std::collections::HashMap;

/// What an allowlisted global is, and so what calling it builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// `dict`, `collections.OrderedDict`, lightning's `AttributeDict`: a dict.
    Dict,
    /// `set`, `frozenset`: a list of the members.
    Set,
    /// `torch._utils._rebuild_tensor_v2`.
    RebuildTensor,
    /// `torch._utils._rebuild_parameter`: the tensor it wraps.
    RebuildParameter,
    /// `torch.FloatStorage` and friends, named in a persistent id.
    Storage(StorageDtype),
    /// `numpy.core.multiarray._reconstruct`: an array filled by `BUILD`.
    NumpyReconstruct,
    /// `numpy.ndarray`: the class argument of `_reconstruct`.
    NumpyArrayClass,
    /// `numpy.dtype`.
    NumpyDtype,
    /// `numpy._core.numeric._frombuffer(bytes, dtype, shape, order)`: how
    /// protocol 5 pickles a contiguous array.
    NumpyFromBuffer,
    /// `numpy.core.multiarray.scalar`: one value of a dtype, from its bytes.
    NumpyScalar,
    /// `_codecs.encode(text, 'latin1')`: the bytes of a protocol-2 `bytes`.
    CodecsEncode,
    /// A class (or a pandas / pyarrow reconstructor) whose instances are
    /// kept as [`Value::Object`] (losses, scalers, `PredictionIntervals`,
    /// pandas frames): constructor arguments and state only, never called.
    Class,
}

/// Element types of the torch storages a checkpoint may reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageDtype {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
    /// complex64: (re, im) f32 pairs (FEDformer's Fourier weights).
    C64,
}

impl StorageDtype {
    pub fn width(self) -> u64 {
        match self {
            StorageDtype::F64 | StorageDtype::I64 | StorageDtype::C64 => 8,
            StorageDtype::F32 | StorageDtype::I32 => 4,
            StorageDtype::F16 | StorageDtype::BF16 | StorageDtype::I16 => 2,
            StorageDtype::I8 | StorageDtype::U8 | StorageDtype::Bool => 1,
        }
    }
}

/// Every global a pre-3.3 NeuralForecast bundle needs, and nothing else
/// (besides pandas' and pyarrow's data structures, admitted by module: see
/// `inert_data_global`).
/// Protocol-2 pickles name builtins `__builtin__`; numpy 2 moved
/// `numpy.core` to `numpy._core`: both spellings are listed.
pub const ALLOWLIST: &[(&str, Known)] = &[
    ("builtins.dict", Known::Dict),
    ("__builtin__.dict", Known::Dict),
    ("collections.OrderedDict", Known::Dict),
    ("lightning_fabric.utilities.data.AttributeDict", Known::Dict),
    (
        "pytorch_lightning.utilities.parsing.AttributeDict",
        Known::Dict,
    ),
    ("lightning.fabric.utilities.data.AttributeDict", Known::Dict),
    ("builtins.set", Known::Set),
    ("__builtin__.set", Known::Set),
    ("builtins.frozenset", Known::Set),
    ("__builtin__.frozenset", Known::Set),
    ("torch._utils._rebuild_tensor_v2", Known::RebuildTensor),
    ("torch._utils._rebuild_parameter", Known::RebuildParameter),
    ("torch.FloatStorage", Known::Storage(StorageDtype::F32)),
    ("torch.DoubleStorage", Known::Storage(StorageDtype::F64)),
    ("torch.HalfStorage", Known::Storage(StorageDtype::F16)),
    ("torch.BFloat16Storage", Known::Storage(StorageDtype::BF16)),
    ("torch.LongStorage", Known::Storage(StorageDtype::I64)),
    ("torch.IntStorage", Known::Storage(StorageDtype::I32)),
    ("torch.ShortStorage", Known::Storage(StorageDtype::I16)),
    ("torch.CharStorage", Known::Storage(StorageDtype::I8)),
    ("torch.ByteStorage", Known::Storage(StorageDtype::U8)),
    ("torch.BoolStorage", Known::Storage(StorageDtype::Bool)),
    (
        "torch.ComplexFloatStorage",
        Known::Storage(StorageDtype::C64),
    ),
    (
        "numpy.core.multiarray._reconstruct",
        Known::NumpyReconstruct,
    ),
    (
        "numpy._core.multiarray._reconstruct",
        Known::NumpyReconstruct,
    ),
    ("numpy.ndarray", Known::NumpyArrayClass),
    ("numpy.dtype", Known::NumpyDtype),
    ("numpy.core.multiarray.scalar", Known::NumpyScalar),
    ("numpy._core.multiarray.scalar", Known::NumpyScalar),
    ("numpy.core.numeric._frombuffer", Known::NumpyFromBuffer),
    ("numpy._core.numeric._frombuffer", Known::NumpyFromBuffer),
    ("_codecs.encode", Known::CodecsEncode),
    // The losses NeuralForecast can save (the service refuses the
    // distribution ones later, with its own reason).
    ("neuralforecast.losses.pytorch.MAE", Known::Class),
    ("neuralforecast.losses.pytorch.MSE", Known::Class),
    ("neuralforecast.losses.pytorch.RMSE", Known::Class),
    ("neuralforecast.losses.pytorch.MAPE", Known::Class),
    ("neuralforecast.losses.pytorch.SMAPE", Known::Class),
    ("neuralforecast.losses.pytorch.MASE", Known::Class),
    ("neuralforecast.losses.pytorch.relMSE", Known::Class),
    ("neuralforecast.losses.pytorch.QuantileLoss", Known::Class),
    ("neuralforecast.losses.pytorch.MQLoss", Known::Class),
    ("neuralforecast.losses.pytorch.HuberLoss", Known::Class),
    ("neuralforecast.losses.pytorch.TukeyLoss", Known::Class),
    ("neuralforecast.losses.pytorch.HuberQLoss", Known::Class),
    ("neuralforecast.losses.pytorch.HuberMQLoss", Known::Class),
    ("neuralforecast.losses.pytorch.IQLoss", Known::Class),
    ("neuralforecast.losses.pytorch.HuberIQLoss", Known::Class),
    (
        "neuralforecast.losses.pytorch.DistributionLoss",
        Known::Class,
    ),
    ("neuralforecast.losses.pytorch.PMM", Known::Class),
    ("neuralforecast.losses.pytorch.GMM", Known::Class),
    ("neuralforecast.losses.pytorch.NBMM", Known::Class),
    ("neuralforecast.losses.pytorch.ISQF", Known::Class),
    // Fitted local scalers in configuration.pkl (the service refits them
    // on each request's df, as NeuralForecast's predict does).
    ("coreforecast.scalers.LocalStandardScaler", Known::Class),
    ("coreforecast.scalers.LocalRobustScaler", Known::Class),
    ("coreforecast.scalers.LocalMinMaxScaler", Known::Class),
    ("coreforecast.scalers.LocalBoxCoxScaler", Known::Class),
    ("neuralforecast.utils.PredictionIntervals", Known::Class),
    // What pandas' pickles use besides its own and pyarrow's globals: block
    // placements are slices, arrow buffers bytearrays; protocols 0-1 rebuild
    // plain objects with copyreg.
    ("builtins.slice", Known::Class),
    ("__builtin__.slice", Known::Class),
    ("builtins.bytearray", Known::Class),
    ("__builtin__.bytearray", Known::Class),
    ("builtins.object", Known::Class),
    ("__builtin__.object", Known::Class),
    ("copyreg._reconstructor", Known::Class),
    ("copy_reg._reconstructor", Known::Class),
];

/// Modules of pandas and pyarrow whose globals are no part of a pickled data
/// structure (file and network I/O, expression evaluation, plotting, test
/// helpers): refused by name like any global off the allowlist.
const NOT_DATA_MODULES: &[&str] = &[
    "pandas.io",
    "pandas.core.computation",
    "pandas.plotting",
    "pandas.testing",
    "pandas.tests",
    "pandas.util",
    "pandas.api",
    "pyarrow.fs",
    "pyarrow.parquet",
    "pyarrow.csv",
    "pyarrow.json",
    "pyarrow.orc",
    "pyarrow.feather",
    "pyarrow.dataset",
    "pyarrow.flight",
    "pyarrow.cffi",
    "pyarrow.jvm",
    "pyarrow.cuda",
    "pyarrow.substrait",
    "pyarrow.acero",
    "pyarrow.compute",
];

/// A global of pandas' or pyarrow's data structures (`pandas.DataFrame`,
/// `pandas.core.internals.managers.BlockManager`,
/// `pandas._libs.internals._unpickle_block`, `pyarrow.lib._restore_array`,
/// ...): admitted as an inert [`Known::Class`]. This reader calls nothing,
/// so what it admits is data either way; the top-level functions of both
/// packages (`pandas.eval`, `pandas.read_pickle`) and the modules of
/// [`NOT_DATA_MODULES`] are still refused, as no frame pickle names them.
fn inert_data_global(module: &str, name: &str) -> bool {
    let package = module.split('.').next().unwrap_or(module);
    if package != "pandas" && package != "pyarrow" {
        return false;
    }
    let in_module = |m: &str| module == m || module.starts_with(&format!("{m}."));
    if NOT_DATA_MODULES.iter().any(|m| in_module(m)) {
        return false;
    }
    // Never an attribute path (`DataFrame.to_pickle`); at the top level of
    // either package only classes (`pandas.DataFrame`, `pandas.StringDtype`).
    !name.contains('.') && (module != package || name.starts_with(|c: char| c.is_ascii_uppercase()))
}

fn allowed(module: &str, name: &str) -> Option<Known> {
    ALLOWLIST
        .iter()
        .find_map(|(full, k)| {
            let (m, n) = full.rsplit_once('.')?;
            (m == module && n == name).then_some(*k)
        })
        .or_else(|| inert_data_global(module, name).then_some(Known::Class))
}

/// A pickled value, as a tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    /// A list, tuple or set.
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// An instance of an allowlisted [`Known::Class`]: `module.name`, the
    /// constructor arguments, and the state `BUILD` gave it.
    Object {
        class: String,
        args: Vec<Value>,
        state: Option<Box<Value>>,
    },
    /// A class itself (an allowlisted global used as a value).
    Class(String),
    Tensor(TensorRef),
    Array(NdArray),
}

impl Value {
    /// The value under a string key of a dict.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items.iter().find_map(|(k, v)| match k {
                Value::Str(s) if s == key => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A short name of the kind of value, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Object { .. } => "object",
            Value::Class(_) => "class",
            Value::Tensor(_) => "tensor",
            Value::Array(_) => "ndarray",
        }
    }
}

/// A tensor as `_rebuild_tensor_v2` describes it: a view into a storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRef {
    /// The storage's key: its file is `<archive>/data/<key>`.
    pub key: String,
    pub dtype: StorageDtype,
    /// Elements the storage holds, as the persistent id declares.
    pub numel: u64,
    pub offset: u64,
    pub size: Vec<u64>,
    pub stride: Vec<u64>,
}

/// A numpy array: dtype code (`f4`, `<f8`, `U6`, ...), shape and raw bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct NdArray {
    pub dtype: String,
    pub shape: Vec<u64>,
    pub fortran: bool,
    pub data: Vec<u8>,
}

/// Why a pickle was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickleError {
    /// A global that is not on [`ALLOWLIST`]; nothing was called.
    #[error("it references the Python global '{0}', which is not on this service's allowlist (nothing was executed)")]
    Global(String),
    #[error("malformed pickle at byte {at}: {what}")]
    Malformed { at: usize, what: String },
    #[error("pickle too large to read: {0}")]
    TooLarge(String),
}

/// Arena index.
type Id = usize;

#[derive(Debug, Clone)]
enum Node {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    Global(Known, String),
    Object {
        class: String,
        args: Id,
        state: Option<Id>,
    },
    Storage {
        dtype: StorageDtype,
        key: String,
        numel: u64,
    },
    Tensor(TensorRef),
    Dtype(String),
    Array(NdArray),
}

/// Bounds on what one pickle may make us hold.
const MAX_NODES: usize = 2_000_000;
const MAX_TREE_NODES: usize = 2_000_000;
const MAX_DEPTH: usize = 256;

/// Reads one pickle. Persistent ids (`BINPERSID`) are only accepted where
/// `persistent` is true (a checkpoint's `data.pkl`).
pub fn read(bytes: &[u8], persistent: bool) -> Result<Value, PickleError> {
    let mut vm = Vm::new(bytes, persistent);
    let root = vm.run()?;
    let mut budget = MAX_TREE_NODES;
    vm.tree(root, 0, &mut budget)
}

/// Reads a pickle holding a dict (no persistent ids), leaving out the values
/// under the keys in `skip`: they are read (so refused globals still refuse
/// the pickle) but not expanded into the tree, and count nothing against
/// its node budget. A left-out object becomes an [`Value::Object`] with its
/// class only, anything else `None`. For `configuration.pkl`, whose
/// conformity scores (`_cs_df`, a whole DataFrame) the configuration itself
/// does not need.
pub fn read_skipping(bytes: &[u8], skip: &[&str]) -> Result<Value, PickleError> {
    let mut vm = Vm::new(bytes, false);
    let root = vm.run()?;
    let mut budget = MAX_TREE_NODES;
    let Node::Dict(items) = &vm.nodes[root] else {
        return vm.tree(root, 0, &mut budget);
    };
    let mut out = Vec::with_capacity(items.len());
    for (k, v) in items {
        let key = vm.tree(*k, 1, &mut budget)?;
        let left_out = matches!(&key, Value::Str(s) if skip.contains(&s.as_str()));
        let value = match (&vm.nodes[*v], left_out) {
            (Node::Object { class, .. }, true) => Value::Object {
                class: class.clone(),
                args: vec![],
                state: None,
            },
            (_, true) => Value::None,
            (_, false) => vm.tree(*v, 1, &mut budget)?,
        };
        out.push((key, value));
    }
    Ok(Value::Dict(out))
}

struct Vm<'a> {
    buf: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u64, Id>,
    persistent: bool,
}

impl<'a> Vm<'a> {
    fn new(buf: &'a [u8], persistent: bool) -> Vm<'a> {
        Vm {
            buf,
            pos: 0,
            nodes: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            persistent,
        }
    }

    fn bad<T>(&self, what: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError::Malformed {
            at: self.pos,
            what: what.into(),
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let Some(end) = end else {
            return self.bad(format!(
                "truncated: {n} bytes wanted, {} left",
                self.buf.len() - self.pos
            ));
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn len32(&mut self) -> Result<usize, PickleError> {
        Ok(u32::from_le_bytes(self.le()?) as usize)
    }

    fn len64(&mut self) -> Result<usize, PickleError> {
        let n = u64::from_le_bytes(self.le()?);
        usize::try_from(n).or_else(|_| self.bad("length does not fit"))
    }

    fn line(&mut self) -> Result<&'a str, PickleError> {
        let rest = &self.buf[self.pos..];
        let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
            return self.bad("unterminated text argument");
        };
        let s = std::str::from_utf8(&rest[..nl]).or_else(|_| self.bad("text is not UTF-8"))?;
        self.pos += nl + 1;
        Ok(s)
    }

    fn utf8(&mut self, n: usize) -> Result<String, PickleError> {
        let b = self.take(n)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => self.bad("string is not UTF-8"),
        }
    }

    fn alloc(&mut self, n: Node) -> Result<Id, PickleError> {
        if self.nodes.len() >= MAX_NODES {
            return Err(PickleError::TooLarge(format!(
                "more than {MAX_NODES} values"
            )));
        }
        self.nodes.push(n);
        Ok(self.nodes.len() - 1)
    }

    fn push(&mut self, n: Node) -> Result<(), PickleError> {
        let id = self.alloc(n)?;
        self.stack.push(id);
        Ok(())
    }

    fn pop(&mut self) -> Result<Id, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.bad("stack underflow");
        }
        match self.stack.pop() {
            Some(id) => Ok(id),
            None => self.bad("stack underflow"),
        }
    }

    fn top(&self) -> Result<Id, PickleError> {
        match self.stack.last() {
            Some(id) => Ok(*id),
            None => self.bad("empty stack"),
        }
    }

    /// The items above the topmost mark, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Id>, PickleError> {
        let Some(m) = self.marks.pop() else {
            return self.bad("no mark");
        };
        if m > self.stack.len() {
            return self.bad("mark above the stack");
        }
        Ok(self.stack.split_off(m))
    }

    fn memo_put(&mut self, key: u64) -> Result<(), PickleError> {
        let id = self.top()?;
        if self.memo.len() >= MAX_NODES {
            return Err(PickleError::TooLarge("memo too large".into()));
        }
        self.memo.insert(key, id);
        Ok(())
    }

    fn memo_get(&mut self, key: u64) -> Result<(), PickleError> {
        match self.memo.get(&key) {
            Some(id) => {
                self.stack.push(*id);
                Ok(())
            }
            None => self.bad(format!("memo key {key} was never stored")),
        }
    }

    fn global(&mut self, module: &str, name: &str) -> Result<(), PickleError> {
        match allowed(module, name) {
            Some(k) => self.push(Node::Global(k, format!("{module}.{name}"))),
            None => Err(PickleError::Global(format!("{module}.{name}"))),
        }
    }

    fn items(&self, id: Id) -> Result<Vec<Id>, PickleError> {
        match &self.nodes[id] {
            Node::List(v) => Ok(v.clone()),
            _ => self.bad("expected a tuple"),
        }
    }

    fn int(&self, id: Id) -> Result<i64, PickleError> {
        match &self.nodes[id] {
            Node::Int(i) => Ok(*i),
            Node::Bool(b) => Ok(*b as i64),
            _ => self.bad("expected an int"),
        }
    }

    fn uint(&self, id: Id) -> Result<u64, PickleError> {
        u64::try_from(self.int(id)?).or_else(|_| self.bad("expected a non-negative int"))
    }

    fn ints(&self, id: Id) -> Result<Vec<u64>, PickleError> {
        self.items(id)?.into_iter().map(|i| self.uint(i)).collect()
    }

    fn text(&self, id: Id) -> Result<String, PickleError> {
        match &self.nodes[id] {
            Node::Str(s) => Ok(s.clone()),
            _ => self.bad("expected a string"),
        }
    }

    /// `callable(*args)` for an allowlisted callable: builds, runs nothing.
    fn call(&mut self, func: Id, args: Id) -> Result<Node, PickleError> {
        let (known, name) = match &self.nodes[func] {
            Node::Global(k, n) => (*k, n.clone()),
            _ => return self.bad("call of something that is not a global"),
        };
        let argv = self.items(args)?;
        match known {
            Known::Dict => match argv.as_slice() {
                [] => Ok(Node::Dict(vec![])),
                [pairs] => {
                    let mut out = Vec::new();
                    for p in self.items(*pairs)? {
                        match self.items(p)?.as_slice() {
                            [k, v] => out.push((*k, *v)),
                            _ => return self.bad("dict item is not a pair"),
                        }
                    }
                    Ok(Node::Dict(out))
                }
                _ => self.bad(format!("{name} with {} arguments", argv.len())),
            },
            Known::Set => match argv.as_slice() {
                [] => Ok(Node::List(vec![])),
                [members] => Ok(Node::List(self.items(*members)?)),
                _ => self.bad("set with more than one argument"),
            },
            Known::RebuildTensor => {
                if argv.len() < 4 {
                    return self.bad("_rebuild_tensor_v2 with fewer than 4 arguments");
                }
                let (dtype, key, numel) = match &self.nodes[argv[0]] {
                    Node::Storage { dtype, key, numel } => (*dtype, key.clone(), *numel),
                    _ => return self.bad("_rebuild_tensor_v2 of something that is not a storage"),
                };
                let offset = self.uint(argv[1])?;
                let size = self.ints(argv[2])?;
                let stride = self.ints(argv[3])?;
                if size.len() != stride.len() {
                    return self.bad("tensor size and stride differ in length");
                }
                Ok(Node::Tensor(TensorRef {
                    key,
                    dtype,
                    numel,
                    offset,
                    size,
                    stride,
                }))
            }
            Known::RebuildParameter => match argv.first().map(|a| &self.nodes[*a]) {
                Some(Node::Tensor(t)) => Ok(Node::Tensor(t.clone())),
                _ => self.bad("_rebuild_parameter of something that is not a tensor"),
            },
            Known::NumpyReconstruct => Ok(Node::Array(NdArray {
                dtype: String::new(),
                shape: vec![],
                fortran: false,
                data: vec![],
            })),
            Known::NumpyDtype => match argv.first() {
                Some(code) => Ok(Node::Dtype(self.text(*code)?)),
                None => self.bad("numpy.dtype without a code"),
            },
            Known::NumpyFromBuffer => {
                let [buf, dtype, shape, order] = argv.as_slice() else {
                    return self.bad("_frombuffer needs (buffer, dtype, shape, order)");
                };
                let data = self.bytes_at(*buf, "_frombuffer of something that is not bytes")?;
                let dtype = self.dtype_at(*dtype, "_frombuffer without a dtype")?;
                let fortran = match self.text(*order)?.as_str() {
                    "C" => false,
                    "F" => true,
                    other => return self.bad(format!("_frombuffer with order '{other}'")),
                };
                Ok(Node::Array(NdArray {
                    dtype,
                    shape: self.ints(*shape)?,
                    fortran,
                    data,
                }))
            }
            Known::NumpyScalar => {
                let [dt, data] = argv.as_slice() else {
                    return self.bad("numpy scalar needs (dtype, bytes)");
                };
                let code = self.dtype_at(*dt, "numpy scalar without a dtype")?;
                let bytes = self.bytes_at(*data, "numpy scalar without bytes")?;
                scalar(&code, &bytes, self.pos)
            }
            Known::CodecsEncode => {
                let [text, enc] = argv.as_slice() else {
                    return self.bad("_codecs.encode needs (text, encoding)");
                };
                let enc = self.text(*enc)?;
                if enc != "latin1" && enc != "latin-1" {
                    return self.bad(format!("_codecs.encode with encoding {enc}"));
                }
                let mut out = Vec::new();
                for c in self.text(*text)?.chars() {
                    match u8::try_from(c as u32) {
                        Ok(b) => out.push(b),
                        Err(_) => return self.bad("latin1 text above U+00FF"),
                    }
                }
                Ok(Node::Bytes(out))
            }
            Known::Class => Ok(Node::Object {
                class: name,
                args,
                state: None,
            }),
            Known::Storage(_) | Known::NumpyArrayClass => {
                self.bad(format!("{name} is not callable here"))
            }
        }
    }

    /// The dtype code a node holds, else `what` as the fault.
    fn dtype_at(&self, id: Id, what: &str) -> Result<String, PickleError> {
        match &self.nodes[id] {
            Node::Dtype(c) => Ok(c.clone()),
            _ => self.bad(what),
        }
    }

    /// The bytes a node holds, else `what` as the fault.
    fn bytes_at(&self, id: Id, what: &str) -> Result<Vec<u8>, PickleError> {
        match &self.nodes[id] {
            Node::Bytes(b) => Ok(b.clone()),
            _ => self.bad(what),
        }
    }

    /// `BUILD`: set an object's state.
    fn build(&mut self, target: Id, state: Id) -> Result<(), PickleError> {
        let new = match &self.nodes[target] {
            Node::Object { class, args, .. } => Node::Object {
                class: class.clone(),
                args: *args,
                state: Some(state),
            },
            // OrderedDict state is its `_metadata` attribute: not data.
            Node::Dict(_) => return Ok(()),
            Node::Dtype(code) => {
                // (version, byteorder, ...): keep an explicit byte order.
                let items = self.items(state)?;
                let order = match items.get(1).map(|i| &self.nodes[*i]) {
                    Some(Node::Str(o)) => o.clone(),
                    _ => return self.bad("dtype state without a byte order"),
                };
                let bare = code.trim_start_matches(['<', '>', '=', '|']);
                Node::Dtype(match order.as_str() {
                    ">" => format!(">{bare}"),
                    _ => bare.to_string(),
                })
            }
            Node::Array(_) => {
                // (version, shape, dtype, is_fortran, raw bytes)
                let items = self.items(state)?;
                let [_, shape, dtype, fortran, raw] = items.as_slice() else {
                    return self.bad("ndarray state is not (version, shape, dtype, fortran, data)");
                };
                let dtype = match &self.nodes[*dtype] {
                    Node::Dtype(c) => c.clone(),
                    _ => return self.bad("ndarray state without a dtype"),
                };
                let object = dtype
                    .trim_start_matches(['<', '>', '=', '|'])
                    .starts_with('O');
                let data = match &self.nodes[*raw] {
                    Node::Bytes(b) => b.clone(),
                    Node::Str(s) => s.as_bytes().to_vec(),
                    // An object array pickles its items as a list (pandas'
                    // string columns and indexes): kept as that list.
                    Node::List(items) if object => {
                        let items = items.clone();
                        self.nodes[target] = Node::List(items);
                        return Ok(());
                    }
                    _ => return self.bad("ndarray state without its data"),
                };
                Node::Array(NdArray {
                    dtype,
                    shape: self.ints(*shape)?,
                    fortran: self.int(*fortran)? != 0,
                    data,
                })
            }
            _ => return self.bad("BUILD on a value that takes no state"),
        };
        self.nodes[target] = new;
        Ok(())
    }

    fn persistent_load(&mut self, pid: Id) -> Result<Node, PickleError> {
        if !self.persistent {
            return self.bad("persistent id outside a checkpoint");
        }
        let items = self.items(pid)?;
        let [kind, cls, key, _location, numel] = items.as_slice() else {
            return self.bad("persistent id is not ('storage', type, key, location, numel)");
        };
        if self.text(*kind)? != "storage" {
            return self.bad("persistent id of something other than a storage");
        }
        let dtype = match &self.nodes[*cls] {
            Node::Global(Known::Storage(d), _) => *d,
            _ => return self.bad("storage of an unknown element type"),
        };
        Ok(Node::Storage {
            dtype,
            key: self.text(*key)?,
            numel: self.uint(*numel)?,
        })
    }

    fn run(&mut self) -> Result<Id, PickleError> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    // PROTO
                    let p = self.u8()?;
                    if p > 5 {
                        return self.bad(format!("pickle protocol {p}"));
                    }
                }
                0x95 => {
                    // FRAME: a length hint only.
                    self.take(8)?;
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let t = self.top()?;
                    self.stack.push(t);
                }
                b'N' => self.push(Node::None)?,
                0x88 => self.push(Node::Bool(true))?,
                0x89 => self.push(Node::Bool(false))?,
                b'J' => {
                    let v = i32::from_le_bytes(self.le()?) as i64;
                    self.push(Node::Int(v))?
                }
                b'K' => {
                    let v = self.u8()? as i64;
                    self.push(Node::Int(v))?
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le()?) as i64;
                    self.push(Node::Int(v))?
                }
                b'I' => {
                    let l = self.line()?;
                    let n = match l {
                        "00" => Node::Bool(false),
                        "01" => Node::Bool(true),
                        _ => match l.parse::<i64>() {
                            Ok(v) => Node::Int(v),
                            Err(_) => return self.bad("INT is not an integer"),
                        },
                    };
                    self.push(n)?
                }
                b'L' => {
                    let l = self.line()?.trim_end_matches('L');
                    match l.parse::<i64>() {
                        Ok(v) => self.push(Node::Int(v))?,
                        Err(_) => return self.bad("LONG outside 64 bits"),
                    }
                }
                0x8a | 0x8b => {
                    // LONG1 / LONG4: little-endian two's complement.
                    let n = if op == 0x8a {
                        self.u8()? as usize
                    } else {
                        self.len32()?
                    };
                    let b = self.take(n)?;
                    match long_le(b) {
                        Some(v) => self.push(Node::Int(v))?,
                        None => return self.bad("integer outside 64 bits"),
                    }
                }
                b'F' => {
                    let l = self.line()?;
                    match l.parse::<f64>() {
                        Ok(v) => self.push(Node::Float(v))?,
                        Err(_) => return self.bad("FLOAT is not a number"),
                    }
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.le()?);
                    self.push(Node::Float(v))?
                }
                b'X' => {
                    let n = self.len32()?;
                    let s = self.utf8(n)?;
                    self.push(Node::Str(s))?
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.utf8(n)?;
                    self.push(Node::Str(s))?
                }
                0x8d => {
                    let n = self.len64()?;
                    let s = self.utf8(n)?;
                    self.push(Node::Str(s))?
                }
                b'V' => {
                    let s = self.line()?.to_string();
                    self.push(Node::Str(s))?
                }
                b'S' => {
                    let s = self
                        .line()?
                        .trim_matches(|c| c == '\'' || c == '"')
                        .to_string();
                    self.push(Node::Str(s))?
                }
                b'T' | b'U' => {
                    // BINSTRING / SHORT_BINSTRING (protocol 1-2 str): latin1.
                    let n = if op == b'T' {
                        self.len32()?
                    } else {
                        self.u8()? as usize
                    };
                    let s: String = self.take(n)?.iter().map(|b| *b as char).collect();
                    self.push(Node::Str(s))?
                }
                b'B' | b'C' | 0x8e | 0x96 => {
                    let n = match op {
                        b'B' => self.len32()?,
                        b'C' => self.u8()? as usize,
                        _ => self.len64()?,
                    };
                    let b = self.take(n)?.to_vec();
                    self.push(Node::Bytes(b))?
                }
                b']' => self.push(Node::List(vec![]))?,
                b')' => self.push(Node::List(vec![]))?,
                b'}' => self.push(Node::Dict(vec![]))?,
                0x8f => self.push(Node::List(vec![]))?,
                b'l' | b't' | 0x91 => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items))?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let floor = self.marks.last().copied().unwrap_or(0);
                    if self.stack.len() < floor + n {
                        return self.bad("stack underflow");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push(Node::List(items))?
                }
                b'a' => {
                    let v = self.pop()?;
                    let l = self.top()?;
                    self.extend(l, vec![v])?;
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    let l = self.top()?;
                    self.extend(l, items)?;
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let Some(pairs) = pairs(items) else {
                        return self.bad("odd number of items for a dict");
                    };
                    self.push(Node::Dict(pairs))?
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let d = self.top()?;
                    self.set_items(d, vec![(k, v)])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let Some(pairs) = pairs(items) else {
                        return self.bad("odd number of items for a dict");
                    };
                    let d = self.top()?;
                    self.set_items(d, pairs)?;
                }
                b'g' => {
                    let k = self.line()?;
                    let k = k.parse::<u64>().or_else(|_| self.bad("GET key"))?;
                    self.memo_get(k)?
                }
                b'h' => {
                    let k = self.u8()? as u64;
                    self.memo_get(k)?
                }
                b'j' => {
                    let k = u32::from_le_bytes(self.le()?) as u64;
                    self.memo_get(k)?
                }
                b'p' => {
                    let k = self.line()?;
                    let k = k.parse::<u64>().or_else(|_| self.bad("PUT key"))?;
                    self.memo_put(k)?
                }
                b'q' => {
                    let k = self.u8()? as u64;
                    self.memo_put(k)?
                }
                b'r' => {
                    let k = u32::from_le_bytes(self.le()?) as u64;
                    self.memo_put(k)?
                }
                0x94 => {
                    let k = self.memo.len() as u64;
                    self.memo_put(k)?
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(module, name)?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (module, name) = (self.text(module)?, self.text(name)?);
                    self.global(&module, &name)?
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let n = self.call(func, args)?;
                    self.push(n)?
                }
                0x81 => {
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let n = self.call(cls, args)?;
                    self.push(n)?
                }
                0x92 => {
                    let _kwargs = self.pop()?;
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let n = self.call(cls, args)?;
                    self.push(n)?
                }
                b'b' => {
                    let state = self.pop()?;
                    let target = self.top()?;
                    self.build(target, state)?
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let n = self.persistent_load(pid)?;
                    self.push(n)?
                }
                b'P' => return self.bad("text persistent ids are not read"),
                b'i' | b'o' => return self.bad("INST/OBJ (protocol 0-1 instances) are not read"),
                0x82..=0x84 => return self.bad("extension registry codes are not read"),
                0x97 | 0x98 => return self.bad("out-of-band buffers are not read"),
                other => return self.bad(format!("unknown opcode 0x{other:02x}")),
            }
        }
    }

    fn extend(&mut self, list: Id, items: Vec<Id>) -> Result<(), PickleError> {
        match &mut self.nodes[list] {
            Node::List(v) => {
                v.extend(items);
                Ok(())
            }
            _ => self.bad("APPEND to something that is not a list"),
        }
    }

    fn set_items(&mut self, dict: Id, pairs: Vec<(Id, Id)>) -> Result<(), PickleError> {
        match &mut self.nodes[dict] {
            Node::Dict(v) => {
                for (k, val) in pairs {
                    v.push((k, val));
                }
                Ok(())
            }
            _ => self.bad("SETITEM on something that is not a dict"),
        }
    }

    /// The tree under `id`, within the node budget and depth.
    fn tree(&self, id: Id, depth: usize, budget: &mut usize) -> Result<Value, PickleError> {
        if depth > MAX_DEPTH {
            return Err(PickleError::TooLarge(format!(
                "nested deeper than {MAX_DEPTH} (or self-referencing)"
            )));
        }
        if *budget == 0 {
            return Err(PickleError::TooLarge(format!(
                "more than {MAX_TREE_NODES} values once shared references are expanded"
            )));
        }
        *budget -= 1;
        let d = depth + 1;
        Ok(match &self.nodes[id] {
            Node::None => Value::None,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::Int(*i),
            Node::Float(f) => Value::Float(*f),
            Node::Str(s) => Value::Str(s.clone()),
            Node::Bytes(b) => Value::Bytes(b.clone()),
            Node::List(v) => Value::List(
                v.iter()
                    .map(|i| self.tree(*i, d, budget))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Dict(v) => Value::Dict(
                v.iter()
                    .map(|(k, x)| Ok((self.tree(*k, d, budget)?, self.tree(*x, d, budget)?)))
                    .collect::<Result<_, PickleError>>()?,
            ),
            Node::Global(_, name) => Value::Class(name.clone()),
            Node::Object { class, args, state } => Value::Object {
                class: class.clone(),
                args: match self.tree(*args, d, budget)? {
                    Value::List(v) => v,
                    other => vec![other],
                },
                state: match state {
                    Some(s) => Some(Box::new(self.tree(*s, d, budget)?)),
                    None => None,
                },
            },
            Node::Storage { key, .. } => {
                return Err(PickleError::Malformed {
                    at: self.pos,
                    what: format!("storage '{key}' used outside a tensor"),
                })
            }
            Node::Tensor(t) => Value::Tensor(t.clone()),
            Node::Dtype(code) => Value::Str(code.clone()),
            Node::Array(a) => Value::Array(a.clone()),
        })
    }
}

/// Key-value pairs, or None for an odd number of items.
fn pairs(items: Vec<Id>) -> Option<Vec<(Id, Id)>> {
    if !items.len().is_multiple_of(2) {
        return None;
    }
    Some(items.chunks_exact(2).map(|c| (c[0], c[1])).collect())
}

/// A little-endian two's complement integer of up to 8 bytes.
fn long_le(b: &[u8]) -> Option<i64> {
    if b.is_empty() {
        return Some(0);
    }
    if b.len() > 8 {
        return None;
    }
    let fill = if b[b.len() - 1] & 0x80 != 0 { 0xff } else { 0 };
    let mut a = [fill; 8];
    a[..b.len()].copy_from_slice(b);
    Some(i64::from_le_bytes(a))
}

/// One numpy scalar from its dtype code and raw bytes.
fn scalar(code: &str, b: &[u8], at: usize) -> Result<Node, PickleError> {
    let bad = |what: String| PickleError::Malformed { at, what };
    let big = code.starts_with('>');
    let bare = code.trim_start_matches(['<', '>', '=', '|']);
    let fixed = |n: usize| -> Result<Vec<u8>, PickleError> {
        if b.len() != n {
            return Err(bad(format!(
                "numpy scalar {code} has {} bytes, not {n}",
                b.len()
            )));
        }
        let mut v = b.to_vec();
        if big {
            v.reverse();
        }
        Ok(v)
    };
    let arr8 = |v: Vec<u8>| {
        let mut a = [0u8; 8];
        a[..v.len()].copy_from_slice(&v);
        a
    };
    Ok(match bare {
        "f8" => Node::Float(f64::from_le_bytes(arr8(fixed(8)?))),
        "f4" => {
            let v = fixed(4)?;
            Node::Float(f32::from_le_bytes([v[0], v[1], v[2], v[3]]) as f64)
        }
        "i8" => Node::Int(i64::from_le_bytes(arr8(fixed(8)?))),
        "i4" => {
            let v = fixed(4)?;
            Node::Int(i32::from_le_bytes([v[0], v[1], v[2], v[3]]) as i64)
        }
        "u8" => Node::Int(
            i64::try_from(u64::from_le_bytes(arr8(fixed(8)?)))
                .map_err(|_| bad("numpy u8 scalar above i64".into()))?,
        ),
        "b1" | "?" => Node::Bool(fixed(1)?[0] != 0),
        s if s.starts_with('U') => {
            // UTF-32 code units, NUL padded.
            if !b.len().is_multiple_of(4) {
                return Err(bad("numpy unicode scalar is not whole code units".into()));
            }
            let mut out = String::new();
            for c in b.chunks_exact(4) {
                let mut u = [c[0], c[1], c[2], c[3]];
                if big {
                    u.reverse();
                }
                let cp = u32::from_le_bytes(u);
                if cp == 0 {
                    break;
                }
                out.push(
                    char::from_u32(cp)
                        .ok_or_else(|| bad("numpy unicode scalar is not Unicode".into()))?,
                );
            }
            Node::Str(out)
        }
        other => return Err(bad(format!("numpy scalar of dtype {other} is not read"))),
    })
}

#[cfg(test)]
mod tests;
