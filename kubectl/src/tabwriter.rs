//! Go's `text/tabwriter` (elastic tabstops), which lays out every kubectl table:
//! `get` (min width 6, padding 3, widths remembered across flushes, as
//! k8s.io/cli-runtime's printers) and `describe` (min width 0, padding 2).
//!
//! Text is cut into cells at tabs; the last cell of a line is not tab-terminated and
//! takes no part in alignment. A column is a run of consecutive lines that all have a
//! tab-terminated cell at that index; its width is its widest cell plus the padding.

/// Buffered text laid out on `flush`.
pub struct TabWriter {
    min_width: usize,
    padding: usize,
    remember_widths: bool,
    remembered: Vec<usize>,
    buffer: String,
    out: String,
}

impl TabWriter {
    /// The layout of `kubectl get` tables.
    pub fn for_tables() -> Self {
        Self::new(6, 3, true)
    }

    /// The layout of `kubectl describe`.
    pub fn for_describe() -> Self {
        Self::new(0, 2, false)
    }

    pub fn new(min_width: usize, padding: usize, remember_widths: bool) -> Self {
        Self {
            min_width,
            padding,
            remember_widths,
            remembered: Vec::new(),
            buffer: String::new(),
            out: String::new(),
        }
    }

    pub fn write(&mut self, text: &str) {
        self.buffer.push_str(text);
    }

    /// Forget the widths remembered from earlier flushes (a new table starts).
    pub fn reset_widths(&mut self) {
        self.remembered.clear();
    }

    /// Lay out everything written so far.
    pub fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.buffer);
        let trailing_newline = text.ends_with('\n');
        let body = text.strip_suffix('\n').unwrap_or(&text);
        let lines: Vec<Vec<&str>> = body.split('\n').map(|l| l.split('\t').collect()).collect();
        let mut widths = Vec::new();
        self.format(&lines, 0, lines.len(), &mut widths);
        if !trailing_newline {
            // The last line had no newline: drop the one `format` wrote.
            self.out.pop();
        }
    }

    /// Flush and hand over the laid-out text.
    pub fn take(&mut self) -> String {
        self.flush();
        std::mem::take(&mut self.out)
    }

    /// Go's `Writer.format`: find the blocks of the next column, recursively.
    fn format(
        &mut self,
        lines: &[Vec<&str>],
        mut line0: usize,
        line1: usize,
        widths: &mut Vec<usize>,
    ) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            // A block of this column starts here: print the lines before it.
            self.write_lines(lines, line0, this, widths);
            line0 = this;
            let mut width = self.min_width;
            while this < line1 && column + 1 < lines[this].len() {
                width = width.max(text_width(lines[this][column]) + self.padding);
                this += 1;
            }
            if self.remember_widths {
                if column < self.remembered.len() {
                    width = width.max(self.remembered[column]);
                    self.remembered[column] = width;
                } else {
                    self.remembered.resize(column, 0);
                    self.remembered.push(width);
                }
            }
            widths.push(width);
            self.format(lines, line0, this, widths);
            widths.pop();
            line0 = this;
        }
        self.write_lines(lines, line0, line1, widths);
    }

    fn write_lines(&mut self, lines: &[Vec<&str>], from: usize, to: usize, widths: &[usize]) {
        for line in &lines[from..to] {
            for (j, cell) in line.iter().enumerate() {
                self.out.push_str(cell);
                if j < widths.len() && j + 1 < line.len() {
                    let pad = widths[j].saturating_sub(text_width(cell));
                    self.out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            self.out.push('\n');
        }
    }
}

/// Display width as Go's tabwriter counts it: one per character.
fn text_width(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_table_layout() {
        let mut w = TabWriter::for_tables();
        w.write("NAME\tSTATUS\tROLES\tAGE\tVERSION\n");
        w.write("n1\tUnknown\t<none>\t0s\t\n");
        assert_eq!(
            w.take(),
            "NAME   STATUS    ROLES    AGE   VERSION\nn1     Unknown   <none>   0s    \n"
        );
    }

    #[test]
    fn remembered_widths_keep_watch_rows_aligned() {
        let mut w = TabWriter::for_tables();
        w.write("NAME\tREADY\n");
        w.write("a-long-name\t1/1\n");
        w.flush();
        w.write("b\t0/1\n");
        assert_eq!(
            w.take(),
            "NAME          READY\na-long-name   1/1\nb             0/1\n"
        );
    }

    #[test]
    fn describe_blocks_break_at_lines_without_tabs() {
        let mut w = TabWriter::for_describe();
        w.write(
            "Name:\tx\nAnnotations:\t<none>\nContainers:\n  c:\n    Image:\tbusybox\n    Host Port:\t<none>\nVolumes:\t<none>\n",
        );
        assert_eq!(
            w.take(),
            "Name:         x\nAnnotations:  <none>\nContainers:\n  c:\n    Image:      busybox\n    Host Port:  <none>\nVolumes:        <none>\n"
        );
    }
}
