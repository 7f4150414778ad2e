//! The results table (markdown).

/// One line of the results table.
#[derive(Debug, Clone)]
pub struct Row {
    pub measure: String,
    pub result: String,
    pub target: String,
    /// `None` when the row has no target.
    pub met: Option<bool>,
}

impl Row {
    /// A row without a target.
    pub fn info(measure: impl Into<String>, result: impl Into<String>) -> Row {
        Row {
            measure: measure.into(),
            result: result.into(),
            target: String::new(),
            met: None,
        }
    }

    /// A row checked against `target`.
    pub fn checked(
        measure: impl Into<String>,
        result: impl Into<String>,
        target: impl Into<String>,
        met: bool,
    ) -> Row {
        Row {
            measure: measure.into(),
            result: result.into(),
            target: target.into(),
            met: Some(met),
        }
    }

    /// A phase that could not run, with the reason.
    pub fn failed(phase: &str, error: &anyhow::Error) -> Row {
        Row {
            measure: format!("{phase}: FAILED"),
            result: format!("{error:#}"),
            target: String::new(),
            met: Some(false),
        }
    }
}

/// The rows as a markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from("| Measurement | Result | Target | Met |\n|---|---|---|---|\n");
    for row in rows {
        let met = match row.met {
            Some(true) => "yes",
            Some(false) => "**NO**",
            None => "",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            escape(&row.measure),
            escape(&row.result),
            escape(&row.target),
            met
        ));
    }
    out
}

/// Keeps a cell on one line and its pipes out of the table's syntax.
fn escape(cell: &str) -> String {
    let one_line: String = cell.split_whitespace().collect::<Vec<_>>().join(" ");
    let short = if one_line.chars().count() > 300 {
        format!("{}…", one_line.chars().take(300).collect::<String>())
    } else {
        one_line
    };
    short.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rows_and_verdicts() {
        let table = markdown(&[
            Row::checked("ratio", "60%", ">= 50%", true),
            Row::checked("p99", "30 ms", "<= 25 ms", false),
            Row::info("RSS", "40 MiB"),
        ]);
        let lines: Vec<_> = table.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[2], "| ratio | 60% | >= 50% | yes |");
        assert_eq!(lines[3], "| p99 | 30 ms | <= 25 ms | **NO** |");
        assert_eq!(lines[4], "| RSS | 40 MiB |  |  |");
    }

    #[test]
    fn failures_stay_on_one_line_without_pipes() {
        let err = anyhow::anyhow!("bad | thing\nsecond line");
        let table = markdown(&[Row::failed("LIST", &err)]);
        assert!(table.contains("| LIST: FAILED | bad \\| thing second line |  | **NO** |"));
    }
}
