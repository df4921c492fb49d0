package moetune.app.config;

/** The kinds of value a run config field holds. */
public enum FieldType {
  STRING,
  INT,
  LONG,
  DOUBLE,
  BOOL,
  /** One of a fixed list of words. */
  CHOICE,
  /** A list of words; on the command line, comma-separated. */
  LIST,
  /** A list of datasets: paths, or objects {path, format, template, labels}. */
  DATASETS
}
