//! The crate's one error type, turned into a Python exception only here, at the edge.

use std::fmt;

use pyo3::exceptions::{PyMemoryError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// What went wrong, named after the NumPy exception a user expects for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// `numpy.exceptions.AxisError`: an axis out of range or repeated.
    Axis(String),
    /// `TypeError`: an unsupported dtype or a wrong `out` dtype.
    Type(String),
    /// `ValueError`: wrong shapes, read-only `out`, bad temperature, empty argmax.
    Value(String),
    /// `MemoryError`: the result cannot be allocated.
    Memory(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Axis(m) | Error::Type(m) | Error::Value(m) | Error::Memory(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

static AXIS_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::Axis(m) => {
                Python::attach(
                    |py| match AXIS_ERROR.import(py, "numpy.exceptions", "AxisError") {
                        Ok(cls) => PyErr::from_type(cls.clone(), m),
                        Err(err) => err,
                    },
                )
            }
            Error::Type(m) => PyTypeError::new_err(m),
            Error::Value(m) => PyValueError::new_err(m),
            Error::Memory(m) => PyMemoryError::new_err(m),
        }
    }
}
