//! Python binding of the top-k kernel: `_core._top_k_lastaxis(x, k, largest, sorted=True)`.
//!
//! `x` must be a 2-D, C-contiguous, native-byte-order float32 or float64 array; the rows are
//! its last axis. The Python wrapper (`softmax_rs._extras.top_k`) moves the requested axis
//! last and makes the array contiguous only when needed.

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::kernels::topk::{top_k_rows, TopKElement};

type TopKResult<'py, T> = (Bound<'py, PyArray2<T>>, Bound<'py, PyArray2<isize>>);

fn run<'py, T: TopKElement + numpy::Element + Default>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, T>,
    k: usize,
    largest: bool,
    sorted: bool,
) -> PyResult<TopKResult<'py, T>> {
    let shape = x.shape();
    let (rows, n) = (shape[0], shape[1]);
    if k > n {
        return Err(PyValueError::new_err(format!(
            "k ({k}) is larger than the size of the axis ({n})"
        )));
    }
    let data = x
        .as_slice()
        .map_err(|_| PyValueError::new_err("x must be C-contiguous"))?;
    let total = rows
        .checked_mul(k)
        .ok_or_else(|| PyValueError::new_err("result too large"))?;
    let (vals, idx) = py.detach(|| {
        let mut vals: Vec<T> = vec![T::default(); total];
        let mut idx: Vec<isize> = vec![0; total];
        // Rows go parallel on the crate's pool for large inputs.
        crate::parallel::install(data.len(), || {
            top_k_rows(data, n, k, largest, sorted, &mut vals, &mut idx)
        });
        (vals, idx)
    });
    let vals = Array2::from_shape_vec((rows, k), vals)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let idx =
        Array2::from_shape_vec((rows, k), idx).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok((vals.into_pyarray(py), idx.into_pyarray(py)))
}

/// Top-k along the last axis of a 2-D C-contiguous float32/float64 array.
///
/// Returns `(values, indices)`, both of shape `(rows, k)`; indices are `np.intp`.
/// Ties go to the lower index; NaN ranks above `+inf` (as in `np.sort`).
#[pyfunction]
#[pyo3(name = "_top_k_lastaxis", signature = (x, k, largest, sorted = true))]
fn top_k_lastaxis<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    k: usize,
    largest: bool,
    sorted: bool,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    if let Ok(a) = x.extract::<PyReadonlyArray2<'py, f32>>() {
        let (v, i) = run(py, a, k, largest, sorted)?;
        return Ok((v.into_any(), i.into_any()));
    }
    if let Ok(a) = x.extract::<PyReadonlyArray2<'py, f64>>() {
        let (v, i) = run(py, a, k, largest, sorted)?;
        return Ok((v.into_any(), i.into_any()));
    }
    Err(PyTypeError::new_err(
        "_top_k_lastaxis expects a 2-D float32 or float64 array",
    ))
}

/// Add `_top_k_lastaxis` to the extension module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(top_k_lastaxis, m)?)?;
    Ok(())
}
