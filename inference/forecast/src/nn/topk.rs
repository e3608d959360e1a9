//! `torch.topk(x, k)` (largest, sorted) on CPU, indices included, with
//! torch's order among equal values. ATen's `topk_impl_loop` puts
//! (value, index) pairs in a vector and, when `k * 64 <= n`, runs
//! `std::partial_sort`; otherwise `std::nth_element` at k - 1 followed by
//! `std::sort` of the first k - 1. Ties therefore land where libstdc++'s
//! introselect / heap / insertion sort leave them; this is a line-by-line
//! port of those routines (checked against torch on 20 000 tie-heavy
//! vectors), since TimesNet's choice of periods depends on the indices.

use crate::forecaster::{shape, ForwardError};

type Elem = (f32, usize);

/// `x` comes before `y`: larger first, NaN before numbers.
fn before(x: &Elem, y: &Elem) -> bool {
    (x.0.is_nan() && !y.0.is_nan()) || x.0 > y.0
}

fn insertion_sort(q: &mut [Elem]) {
    for i in 1..q.len() {
        let val = q[i];
        if before(&val, &q[0]) {
            q.copy_within(0..i, 1);
            q[0] = val;
        } else {
            let mut j = i;
            while before(&val, &q[j - 1]) {
                q[j] = q[j - 1];
                j -= 1;
            }
            q[j] = val;
        }
    }
}

fn push_heap(q: &mut [Elem], mut hole: usize, top: usize, value: Elem) {
    while hole > top {
        let parent = (hole - 1) / 2;
        if !before(&q[parent], &value) {
            break;
        }
        q[hole] = q[parent];
        hole = parent;
    }
    q[hole] = value;
}

fn adjust_heap(q: &mut [Elem], mut hole: usize, len: usize, value: Elem) {
    let top = hole;
    let mut second = hole;
    while second < len.saturating_sub(1) / 2 {
        second = 2 * (second + 1);
        if before(&q[second], &q[second - 1]) {
            second -= 1;
        }
        q[hole] = q[second];
        hole = second;
    }
    if len.is_multiple_of(2) && len >= 2 && second == (len - 2) / 2 {
        second = 2 * (second + 1);
        q[hole] = q[second - 1];
        hole = second - 1;
    }
    push_heap(q, hole, top, value);
}

fn make_heap(q: &mut [Elem]) {
    let len = q.len();
    if len < 2 {
        return;
    }
    let mut parent = (len - 2) / 2;
    loop {
        let v = q[parent];
        adjust_heap(q, parent, len, v);
        if parent == 0 {
            return;
        }
        parent -= 1;
    }
}

/// `__pop_heap(first, first + len, result)`.
fn pop_heap(q: &mut [Elem], len: usize, result: usize) {
    let value = q[result];
    q[result] = q[0];
    adjust_heap(&mut q[..len], 0, len, value);
}

fn heap_select(q: &mut [Elem], middle: usize) {
    make_heap(&mut q[..middle]);
    for i in middle..q.len() {
        if before(&q[i], &q[0]) {
            pop_heap(q, middle, i);
        }
    }
}

fn sort_heap(q: &mut [Elem]) {
    let mut last = q.len();
    while last > 1 {
        last -= 1;
        pop_heap(q, last, last);
    }
}

fn move_median_to_first(q: &mut [Elem], a: usize, b: usize, c: usize) {
    let pick = if before(&q[a], &q[b]) {
        if before(&q[b], &q[c]) {
            b
        } else if before(&q[a], &q[c]) {
            c
        } else {
            a
        }
    } else if before(&q[a], &q[c]) {
        a
    } else if before(&q[b], &q[c]) {
        c
    } else {
        b
    };
    q.swap(0, pick);
}

/// `__unguarded_partition(first + 1, last, pivot = first)` on q.
fn unguarded_partition(q: &mut [Elem]) -> usize {
    let (mut first, mut last) = (1, q.len());
    loop {
        while before(&q[first], &q[0]) {
            first += 1;
        }
        last -= 1;
        while before(&q[0], &q[last]) {
            last -= 1;
        }
        if first >= last {
            return first;
        }
        q.swap(first, last);
        first += 1;
    }
}

fn introselect(q: &mut [Elem], nth: usize, mut depth: u32) {
    let (mut first, mut last) = (0, q.len());
    while last - first > 3 {
        let part = &mut q[first..last];
        if depth == 0 {
            heap_select(part, nth - first + 1);
            part.swap(0, nth - first);
            return;
        }
        depth -= 1;
        let len = part.len();
        move_median_to_first(part, 1, len / 2, len - 1);
        let cut = first + unguarded_partition(part);
        if cut <= nth {
            first = cut;
        } else {
            last = cut;
        }
    }
    insertion_sort(&mut q[first..last]);
}

/// The indices of the `k` largest values, largest first, as torch orders them.
pub fn topk_indices(x: &[f32], k: usize) -> Result<Vec<usize>, ForwardError> {
    let n = x.len();
    if k == 0 || k > n {
        return Err(shape!("topk of {k} from {n} values"));
    }
    let mut q: Vec<Elem> = x.iter().copied().zip(0..).collect();
    if k * 64 <= n {
        heap_select(&mut q, k);
        sort_heap(&mut q[..k]);
    } else {
        if k - 1 != n {
            introselect(&mut q, k - 1, 2 * n.ilog2());
        }
        if k - 1 > 16 {
            // std::sort is a plain insertion sort only up to 16 elements.
            return Err(shape!("topk with k = {k} > 17 is not reproduced"));
        }
        insertion_sort(&mut q[..k - 1]);
    }
    Ok(q[..k].iter().map(|e| e.1).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// torch.topk(torch.tensor(x), k).indices from torch 2.x on CPU.
    #[test]
    fn ties_follow_torch() {
        let t = |x: &[f32], k| topk_indices(x, k).unwrap();
        assert_eq!(t(&[0.0, 1.0, 3.0, 3.0, 2.0], 2), vec![3, 2]);
        assert_eq!(t(&[0.0, 1.0, 3.0, 3.0, 2.0], 3), vec![3, 2, 4]);
        assert_eq!(t(&[0.0, 3.0, 1.0, 3.0, 3.0, 2.0], 3), vec![1, 4, 3]);
        let twos = [0.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0];
        assert_eq!(t(&twos, 1), vec![8]);
        assert_eq!(t(&twos, 3), vec![8, 6, 7]);
        let mut sparse = [0.0f32; 40];
        for i in [2, 5, 7, 30] {
            sparse[i] = 1.0;
        }
        assert_eq!(t(&sparse, 3), vec![30, 7, 5]);
        // k * 64 <= n: the partial_sort path.
        let mut long = [0.0f32; 130];
        for i in [3, 50, 99] {
            long[i] = 1.0;
        }
        assert_eq!(t(&long, 2), vec![50, 3]);
        assert!(topk_indices(&[1.0], 2).is_err());
    }

    #[test]
    fn distinct_values_come_out_sorted() {
        let x = [0.5f32, 9.0, -1.0, 4.0, 7.5, 3.0, 8.0];
        assert_eq!(topk_indices(&x, 4).unwrap(), vec![1, 6, 4, 3]);
    }
}
