//! Groups of similar questions, over their embeddings (unit vectors, so a dot product is the
//! cosine). Leader clustering: each question joins the closest group whose centre it resembles
//! at least `threshold`, or starts a group; then every question is placed once more against the
//! final centres, so that early questions are not stuck in the group they happened to start.
//! Each group is labelled by the question closest to its centre: a real question an owner
//! recognises, never a made-up summary.

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = dot(&v, &v).sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

/// One group: the indices of its members, its label's index first.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub label: usize,
    pub members: Vec<usize>,
}

fn centres(groups: &[Vec<usize>], vectors: &[Vec<f32>]) -> Vec<Vec<f32>> {
    groups
        .iter()
        .map(|members| {
            let mut sum = vec![0.0f32; vectors[members[0]].len()];
            for &m in members {
                for (s, x) in sum.iter_mut().zip(&vectors[m]) {
                    *s += x;
                }
            }
            unit(sum)
        })
        .collect()
}

fn closest(v: &[f32], centres: &[Vec<f32>]) -> Option<(usize, f32)> {
    centres
        .iter()
        .enumerate()
        .map(|(i, c)| (i, dot(v, c)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Groups of `vectors` (any length, same dimension), largest first.
pub fn cluster(vectors: &[Vec<f32>], threshold: f32) -> Vec<Group> {
    let dim = vectors.first().map_or(0, Vec::len);
    let vectors: Vec<Vec<f32>> = vectors
        .iter()
        .map(|v| {
            if v.len() == dim {
                unit(v.clone())
            } else {
                vec![0.0; dim]
            }
        })
        .collect();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut sums: Vec<Vec<f32>> = Vec::new();
    // The unit centres, kept beside the sums: only the group that grew is normalised again.
    let mut centres_now: Vec<Vec<f32>> = Vec::new();
    for (i, v) in vectors.iter().enumerate() {
        match closest(v, &centres_now) {
            Some((g, sim)) if sim >= threshold => {
                groups[g].push(i);
                for (s, x) in sums[g].iter_mut().zip(v) {
                    *s += x;
                }
                centres_now[g] = unit(sums[g].clone());
            }
            _ => {
                groups.push(vec![i]);
                sums.push(v.clone());
                centres_now.push(v.clone());
            }
        }
    }
    // Second pass against the settled centres.
    let settled = centres(&groups, &vectors);
    let mut placed: Vec<Vec<usize>> = vec![Vec::new(); settled.len()];
    for (i, v) in vectors.iter().enumerate() {
        match closest(v, &settled) {
            Some((g, sim)) if sim >= threshold => placed[g].push(i),
            _ => placed.push(vec![i]),
        }
    }
    placed.retain(|g| !g.is_empty());
    let final_centres = centres(&placed, &vectors);
    let mut out: Vec<Group> = placed
        .into_iter()
        .zip(final_centres)
        .map(|(members, centre)| {
            let label = members
                .iter()
                .copied()
                .max_by(|a, b| dot(&vectors[*a], &centre).total_cmp(&dot(&vectors[*b], &centre)))
                .unwrap_or(members[0]);
            let mut ordered = vec![label];
            ordered.extend(members.into_iter().filter(|m| *m != label));
            Group {
                label,
                members: ordered,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.members
            .len()
            .cmp(&a.members.len())
            .then(a.label.cmp(&b.label))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: f32, y: f32, z: f32) -> Vec<f32> {
        vec![x, y, z]
    }

    #[test]
    fn close_vectors_group_and_the_most_central_labels_them() {
        let vs = vec![
            v(1.0, 0.05, 0.0),
            v(0.0, 1.0, 0.0),
            v(1.0, 0.0, 0.0),
            v(1.0, -0.05, 0.0),
            v(0.0, 0.98, 0.1),
            v(0.0, 0.0, 1.0),
        ];
        let groups = cluster(&vs, 0.95);
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].label, 2, "{groups:?}");
        let mut first = groups[0].members.clone();
        first.sort();
        assert_eq!(first, [0, 2, 3]);
        let mut second = groups[1].members.clone();
        second.sort();
        assert_eq!(second, [1, 4]);
        assert_eq!(groups[2].members, [5]);
    }

    #[test]
    fn empty_and_odd_input_is_harmless() {
        assert!(cluster(&[], 0.9).is_empty());
        let groups = cluster(&[vec![0.0, 0.0], vec![1.0]], 0.9);
        assert_eq!(groups.iter().map(|g| g.members.len()).sum::<usize>(), 2);
    }
}
