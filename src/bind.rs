//! Binding helpers: read a NumPy array's address, shape, strides and dtype; check `out=`;
//! allocate results; release the GIL around a request. The only Rust module besides lib.rs
//! that knows Python types.

use numpy::npyffi::{self, NPY_ORDER, PY_ARRAY_API};
use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyFloat, PyInt, PyTuple};

use crate::elem::DType;
use crate::error::Error;

/// Arrays with fewer elements are computed without releasing the GIL: releasing it costs
/// more than the work (as blake3-py does below 2 KiB).
pub const GIL_MIN_ELEMS: usize = 4096;

/// A NumPy array seen from Rust.
pub struct ArrayInfo<'py> {
    pub array: Bound<'py, PyUntypedArray>,
    pub ptr: *mut u8,
    pub shape: Vec<usize>,
    pub strides: Vec<isize>,
    pub dtype: Option<DType>,
    pub swapped: bool,
    pub writeable: bool,
    pub descr: Bound<'py, PyArrayDescr>,
}

impl<'py> ArrayInfo<'py> {
    pub fn new(array: Bound<'py, PyUntypedArray>) -> Self {
        let raw = array.as_array_ptr();
        // SAFETY: `array` is a live ndarray; its fields are valid while we hold a reference.
        let (ptr, flags) = unsafe { ((*raw).fields.data.cast::<u8>(), (*raw).fields.flags) };
        let descr = array.dtype();
        let (dtype, swapped) = classify(&descr);
        ArrayInfo {
            shape: array.shape().to_vec(),
            strides: array.strides().to_vec(),
            ptr,
            dtype,
            swapped,
            writeable: flags & npyffi::NPY_ARRAY_WRITEABLE != 0,
            descr,
            array,
        }
    }

    pub fn size(&self) -> usize {
        self.shape.iter().product()
    }

    /// [lowest, highest) byte addresses touched, or None when empty.
    pub fn extent(&self) -> Option<(usize, usize)> {
        if self.shape.contains(&0) {
            return None;
        }
        let (mut lo, mut hi) = (self.ptr as isize, self.ptr as isize);
        for (&n, &s) in self.shape.iter().zip(&self.strides) {
            let span = (n as isize - 1) * s;
            if span < 0 {
                lo += span;
            } else {
                hi += span;
            }
        }
        let item = self.descr.itemsize() as isize;
        Some((lo as usize, (hi + item) as usize))
    }

    pub fn overlaps(&self, other: &ArrayInfo<'_>) -> bool {
        match (self.extent(), other.extent()) {
            (Some((a0, a1)), Some((b0, b1))) => a0 < b1 && b0 < a1,
            _ => false,
        }
    }

    /// Same memory, same layout, same dtype: an in-place call.
    pub fn same_view(&self, other: &ArrayInfo<'_>) -> bool {
        self.ptr == other.ptr
            && self.shape == other.shape
            && self.strides == other.strides
            && self.descr.is_equiv_to(&other.descr)
    }
}

/// The storage dtype (None if unsupported) and whether it is in foreign byte order.
fn classify(descr: &Bound<'_, PyArrayDescr>) -> (Option<DType>, bool) {
    let swapped = descr.byteorder()
        == if cfg!(target_endian = "little") {
            b'>'
        } else {
            b'<'
        };
    if descr.has_fields() || descr.has_subarray() {
        return (None, swapped);
    }
    let dt = DType::from_kind(descr.kind(), descr.itemsize()).or_else(|| {
        // ml_dtypes.bfloat16 is a user-defined dtype; recognise it by its scalar type's name.
        let user = descr.num() >= npyffi::NPY_TYPES::NPY_USERDEF as i32;
        let named = descr.typeobj().name().is_ok_and(|n| n == "bfloat16");
        (user && named && descr.itemsize() == 2).then_some(DType::BF16)
    });
    (dt, swapped)
}

static ASARRAY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `x` as an ndarray: itself if it is one, else through the facade's `_args.asarray`
/// (numpy.asarray, or numpy.from_dlpack for DLPack-only objects).
pub fn as_array<'py>(x: &Bound<'py, PyAny>) -> PyResult<ArrayInfo<'py>> {
    if let Ok(a) = x.cast::<PyUntypedArray>() {
        return Ok(ArrayInfo::new(a.clone()));
    }
    let f = ASARRAY.import(x.py(), "softmax_rs._args", "asarray")?;
    let a = f.call1((x,))?;
    let a = a
        .cast_into::<PyUntypedArray>()
        .map_err(|_| PyTypeError::new_err("could not convert the input to a numpy array"))?;
    Ok(ArrayInfo::new(a))
}

/// Call a facade helper from `softmax_rs._args` (the slow paths: broadcasting, copying).
pub fn helper<'py, A: pyo3::call::PyCallArgs<'py>>(
    py: Python<'py>,
    name: &str,
    args: A,
) -> PyResult<Bound<'py, PyAny>> {
    py.import("softmax_rs._args")?.getattr(name)?.call1(args)
}

/// The `axis` argument: None (every axis) or a list of axes.
#[derive(Debug, Clone)]
pub enum AxisArg {
    /// `axis=-1`, the default.
    Last,
    /// `axis=None`.
    All,
    /// An int.
    One(i64),
    /// A tuple (possibly empty: no axis is reduced).
    Many(Vec<i64>),
}

impl AxisArg {
    /// The mask of reduced axes for an array of `ndim` dimensions.
    pub fn mask(&self, ndim: usize) -> PyResult<Vec<bool>> {
        match self {
            AxisArg::All => Ok(vec![true; ndim]),
            AxisArg::Last => Ok(crate::layout::axis_mask(&[-1], ndim)?),
            AxisArg::One(a) => Ok(crate::layout::axis_mask(&[*a], ndim)?),
            AxisArg::Many(v) => Ok(crate::layout::axis_mask(v, ndim)?),
        }
    }
}

impl<'py> FromPyObject<'_, 'py> for AxisArg {
    type Error = PyErr;
    fn extract(obj: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        if obj.is_none() {
            return Ok(AxisArg::All);
        }
        if let Ok(t) = obj.cast::<PyTuple>() {
            let v: Vec<i64> = t.iter().map(|a| index_of(&a)).collect::<PyResult<_>>()?;
            return Ok(AxisArg::Many(v));
        }
        Ok(AxisArg::One(index_of(&obj)?))
    }
}

fn index_of(a: &Bound<'_, PyAny>) -> PyResult<i64> {
    if a.cast::<PyInt>().is_ok() && a.cast::<pyo3::types::PyBool>().is_err() {
        return a.extract();
    }
    if a.cast::<pyo3::types::PyBool>().is_err() && a.hasattr("__index__").unwrap_or(false) {
        return a.call_method0("__index__")?.extract();
    }
    Err(PyTypeError::new_err(format!(
        "axis must be an integer, a tuple of integers or None, not {}",
        a.get_type().name()?
    )))
}

/// A scalar temperature, if `t` is one (validated), else None (an array: use the helper).
pub fn scalar_temperature(t: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    let v = if let Ok(f) = t.cast::<PyFloat>() {
        f.value()
    } else if t.cast::<PyInt>().is_ok() && t.cast::<pyo3::types::PyBool>().is_err() {
        t.extract::<f64>()?
    } else {
        return Ok(None);
    };
    check_temperature(v)?;
    Ok(Some(v))
}

pub fn check_temperature(v: f64) -> Result<(), Error> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Error::Value(format!(
            "temperature must be positive and finite, got {v}"
        )))
    }
}

/// NumPy's descriptor for a float dtype we write.
pub fn descr_for<'py>(
    py: Python<'py>,
    dt: DType,
    like: &Bound<'py, PyArrayDescr>,
) -> Bound<'py, PyArrayDescr> {
    match dt {
        DType::F32 => numpy::dtype::<f32>(py),
        DType::F64 => numpy::dtype::<f64>(py),
        DType::F16 => numpy::dtype::<half::f16>(py),
        // bfloat16: the input's own descriptor in native byte order.
        _ => like.clone(),
    }
}

/// A new array shaped like `proto`, in its memory order (as NumPy's `empty_like`).
pub fn empty_like<'py>(
    proto: &ArrayInfo<'py>,
    descr: &Bound<'py, PyArrayDescr>,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = proto.array.py();
    let d = descr.clone().into_dtype_ptr();
    // SAFETY: PyArray_NewLikeArray steals the descriptor reference we pass and returns a new
    // reference or NULL with an exception set.
    let obj = unsafe {
        PY_ARRAY_API.PyArray_NewLikeArray(
            py,
            proto.array.as_array_ptr(),
            NPY_ORDER::NPY_KEEPORDER,
            d,
            0,
        )
    };
    // SAFETY: as above; NULL means a Python error is set (MemoryError for huge shapes).
    let obj = unsafe { Bound::from_owned_ptr_or_err(py, obj)? };
    Ok(obj.cast_into::<PyUntypedArray>()?)
}

/// A new C-ordered array of `shape`.
pub fn empty<'py>(
    py: Python<'py>,
    shape: &[usize],
    descr: &Bound<'py, PyArrayDescr>,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let mut dims: Vec<npyffi::npy_intp> = shape.iter().map(|&n| n as npyffi::npy_intp).collect();
    let d = descr.clone().into_dtype_ptr();
    // SAFETY: NewFromDescr steals `d`; `dims` lives across the call; NULL data asks NumPy to
    // allocate; returns NULL with an exception set on failure.
    let obj = unsafe {
        PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type),
            d,
            dims.len() as i32,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
        )
    };
    // SAFETY: as above.
    let obj = unsafe { Bound::from_owned_ptr_or_err(py, obj)? };
    Ok(obj.cast_into::<PyUntypedArray>()?)
}

/// Check a user's `out=`: an ndarray of exactly `shape` and `dtype`, writable.
pub fn check_out<'py>(
    out: &Bound<'py, PyAny>,
    shape: &[usize],
    descr: &Bound<'py, PyArrayDescr>,
) -> PyResult<ArrayInfo<'py>> {
    let a = out.cast::<PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!(
            "out must be a numpy.ndarray, not {}",
            out.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    let info = ArrayInfo::new(a.clone());
    if !info.descr.is_equiv_to(descr) || info.swapped {
        return Err(Error::Type(format!(
            "out has dtype {}, expected {}",
            info.descr.str()?,
            descr.str()?
        ))
        .into());
    }
    if info.shape != shape {
        return Err(Error::Value(format!(
            "out has shape {:?}, expected {:?}",
            tuple(&info.shape),
            tuple(shape)
        ))
        .into());
    }
    if !info.writeable {
        return Err(Error::Value("out is read-only".into()).into());
    }
    if info.size() > 0
        && info
            .shape
            .iter()
            .zip(&info.strides)
            .any(|(&n, &s)| n > 1 && s == 0)
    {
        return Err(Error::Value("out has a zero stride: its elements overlap".into()).into());
    }
    Ok(info)
}

/// Shapes printed the Python way.
pub struct Shape<'a>(&'a [usize]);
pub fn tuple(s: &[usize]) -> Shape<'_> {
    Shape(s)
}
impl std::fmt::Debug for Shape<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            [n] => write!(f, "({n},)"),
            s => {
                write!(f, "(")?;
                for (i, n) in s.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{n}")?;
                }
                write!(f, ")")
            }
        }
    }
}

/// Run `f` with the GIL released when the work is large, polling for Ctrl-C between waves.
pub fn run_released<T: Send>(
    py: Python<'_>,
    elems: usize,
    f: impl FnOnce(&mut dyn FnMut() -> bool) -> T + Send,
) -> PyResult<T> {
    let mut pending: Option<PyErr> = None;
    let out = if elems >= GIL_MIN_ELEMS {
        py.detach(|| {
            let mut check = || {
                Python::attach(|py| match py.check_signals() {
                    Ok(()) => false,
                    Err(e) => {
                        pending = Some(e);
                        true
                    }
                })
            };
            f(&mut check)
        })
    } else {
        f(&mut || false)
    };
    match pending {
        Some(e) => Err(e),
        None => Ok(out),
    }
}
