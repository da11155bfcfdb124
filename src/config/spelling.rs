//! The name most likely meant by a misspelt one (a flag, an environment
//! variable), for the message that names it.

/// Of `known`, the name closest to `name`, if close enough to be a slip:
/// at most a third of the letters of `part` (what of `name` is measured,
/// without a common prefix), and at most 3, wrong; the shorter of equals.
pub fn closest<'a, S: AsRef<str>>(name: &str, part: &str, known: &'a [S]) -> Option<&'a str> {
    let limit = (part.chars().count() / 3).clamp(1, 3);
    known
        .iter()
        .map(AsRef::as_ref)
        .map(|k| (edits(name, k), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, k)| (*d, k.len()))
        .map(|(_, k)| k)
}

/// Levenshtein distance: insertions, deletions and substitutions.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_count_insertions_deletions_and_substitutions() {
        assert_eq!(edits("kitten", "sitting"), 3);
        assert_eq!(edits("REF", "REFF"), 1);
        assert_eq!(edits("", "ab"), 2);
        assert_eq!(edits("same", "same"), 0);
    }

    #[test]
    fn the_closest_name_within_a_third_of_its_letters() {
        let known = ["ref", "repo", "root", "period", "webhook-url"];
        assert_eq!(closest("reff", "reff", &known), Some("ref"));
        assert_eq!(closest("perod", "perod", &known), Some("period"));
        assert_eq!(
            closest("webhok-ur", "webhok-ur", &known),
            Some("webhook-url")
        );
        assert_eq!(closest("something", "something", &known), None);
    }
}
