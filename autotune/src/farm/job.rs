//! What a measurement job carries to a worker ([`JobSpec`]: a [`Build`] by value) and back
//! ([`JobResult`]), encoded as gzip-compressed JSON (generated C and input vectors shrink
//! five- to tenfold, which is most of the database's traffic per trial).

use crate::measure::{Build, MeasureError, Measurement};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use minnow_backends::c::CSource;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// A [`Build`] that owns its parts, for the queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The target's name.
    pub target: String,
    /// The generated model.
    pub source: CSource,
    /// For each inference, the bytes of each model input.
    pub vectors: Vec<Vec<Vec<u8>>>,
    /// Also time each layer.
    pub per_layer: bool,
    /// Seconds the run may take on the board before it counts as hanging.
    pub timeout_seconds: f64,
}

/// How a job ended, as the worker reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobResult {
    /// The board ran it.
    Measured(Measurement),
    /// The candidate did not build or crashed, or gave unreadable output.
    Failed {
        /// What went wrong.
        message: String,
    },
    /// It did not finish within the worker's deadline.
    Timeout {
        /// The board.
        board: String,
        /// The deadline.
        seconds: f64,
    },
    /// Every board that tried it failed, or it was lost too often (see
    /// [`super::MAX_ATTEMPTS`]).
    Abandoned {
        /// What happened.
        message: String,
    },
}

impl JobSpec {
    /// `build` by value.
    pub fn of(build: &Build) -> JobSpec {
        JobSpec {
            target: build.target.name.to_string(),
            source: build.source.clone(),
            vectors: build.vectors.to_vec(),
            per_layer: build.per_layer,
            timeout_seconds: crate::measure::RUN_TIMEOUT.as_secs_f64(),
        }
    }

    /// The build it describes, for `target`.
    pub fn build<'a>(&'a self, target: &'a minnow_targets::Target) -> Build<'a> {
        Build {
            target,
            source: &self.source,
            vectors: &self.vectors,
            per_layer: self.per_layer,
        }
    }
}

impl JobResult {
    /// The result of a measurement on the worker's board, or the message of a failure of the
    /// board itself (the job goes to another board).
    pub fn of(measured: Result<Measurement, MeasureError>) -> Result<JobResult, String> {
        Ok(match measured {
            Ok(m) => JobResult::Measured(m),
            Err(e @ MeasureError::Board { .. }) => return Err(e.to_string()),
            Err(MeasureError::Timeout { board, seconds }) => JobResult::Timeout { board, seconds },
            Err(e) => JobResult::Failed {
                message: e.to_string(),
            },
        })
    }

    /// The measurement, or the error the tuner sees.
    pub fn into_measurement(self, worker: &str) -> Result<Measurement, MeasureError> {
        match self {
            JobResult::Measured(m) => Ok(m),
            JobResult::Failed { message } => Err(MeasureError::Run {
                board: worker.to_string(),
                message,
            }),
            JobResult::Timeout { board, seconds } => Err(MeasureError::Timeout { board, seconds }),
            JobResult::Abandoned { message } => Err(MeasureError::Run {
                board: "farm".into(),
                message,
            }),
        }
    }
}

/// `value` as gzip-compressed JSON.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    serde_json::to_writer(&mut gz, value).expect("job parts serialise");
    gz.flush().expect("writing to memory");
    gz.finish().expect("writing to memory")
}

/// The value [`encode`] wrote, or why the bytes are not one.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    let mut json = Vec::new();
    GzDecoder::new(bytes)
        .read_to_end(&mut json)
        .map_err(|e| format!("not gzip data ({e})"))?;
    serde_json::from_slice(&json).map_err(|e| {
        format!("unreadable ({e}); the farm's hosts must all run the same minnow version")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Sections;

    #[test]
    fn specs_and_results_round_trip_and_shrink() {
        let spec = JobSpec {
            target: "cortex-m4".into(),
            source: CSource {
                name: "m".into(),
                header: "int m_run(void);\n".into(),
                source: "static const signed char w[] = {".to_string()
                    + &"1, -2, 3, ".repeat(4000)
                    + "};",
                outputs: 1,
            },
            vectors: vec![vec![vec![7; 1000]]; 3],
            per_layer: true,
            timeout_seconds: 60.0,
        };
        let bytes = encode(&spec);
        assert!(bytes.len() * 5 < serde_json::to_vec(&spec).unwrap().len());
        assert_eq!(decode::<JobSpec>(&bytes).unwrap(), spec);
        let result = JobResult::Measured(Measurement {
            outputs: vec![vec![vec![1, 2, 3]]],
            instructions: Some(vec![42]),
            nanoseconds: None,
            cycles: None,
            layer_counts: vec![40],
            sections: Sections::default(),
        });
        assert_eq!(decode::<JobResult>(&encode(&result)).unwrap(), result);
        assert!(decode::<JobResult>(b"nonsense")
            .unwrap_err()
            .contains("gzip"));
    }

    #[test]
    fn board_failures_are_not_results() {
        let board = MeasureError::Board {
            board: "probe".into(),
            message: "gone".into(),
        };
        assert!(JobResult::of(Err(board)).unwrap_err().contains("gone"));
        let timeout = MeasureError::Timeout {
            board: "mps2-an386".into(),
            seconds: 60.0,
        };
        let back = JobResult::of(Err(timeout)).unwrap().into_measurement("w");
        assert!(matches!(back, Err(MeasureError::Timeout { .. })));
    }
}
