"""pyradiomics' marching-cubes mesh of a binary mask: surface area, volume and maximum diameters.

The mesh has its vertices on the midpoints of the grid edges whose two voxels differ, as pyradiomics' ``cshape.c``
places them. Its cube table is derived here rather than written out:

- topology: a cube whose corner (1, 1, 0) (z, y, x) is inside is read as its complement (the mesh only changes
  orientation), and on a face whose inside corners lie on a diagonal those corners are cut off separately;
- triangulation: planar polygons are fanned from any vertex (all fans have the same area and volume); the five
  kinds of non-planar polygon are fanned from the vertex pyradiomics' table uses, given once for one polygon of each
  kind in :data:`_FAN_APEXES` and carried to every other polygon of that kind by the cube's 24 rotations.

The apexes were found by probing pyradiomics' mesh on every one of the 256 cube configurations with three
anisotropic spacings; ``test_engine`` checks the derived table against pyradiomics cube by cube.
"""

import functools
import itertools

import numpy as np

CORNERS = np.array([[(c >> 2) & 1, (c >> 1) & 1, c & 1] for c in range(8)])  # corner c at (z, y, x) bits of c
EDGES = [(a, b) for a in range(8) for b in range(a + 1, 8) if np.abs(CORNERS[a] - CORNERS[b]).sum() == 1]
MIDPOINTS = np.array([(CORNERS[a] + CORNERS[b]) / 2 for a, b in EDGES])
_PIVOT = 6  # corner (1, 1, 0): a cube holding it is meshed as its complement

# One polygon of each non-planar kind: the cube configuration (bit c = corner c inside) whose polygon it is, and the
# edge (two corners) its fan starts from.
_FAN_APEXES = ((0b00000111, (1, 5)), (0b00011011, (4, 5)), (0b00011101, (4, 6)), (0b00111101, (0, 1)),
               (0b10011111, (1, 5)))


_EDGE_OF = {pair: k for k, (a, b) in enumerate(EDGES) for pair in ((a, b), (b, a))}


def _cube_faces():
    """The six faces, each as its four corners in cyclic order."""
    faces = []
    for axis in range(3):
        u, v = [a for a in range(3) if a != axis]
        for side in (0, 1):
            ring = [(0, 0), (0, 1), (1, 1), (1, 0)]
            faces.append([next(c for c in range(8) if CORNERS[c][axis] == side and CORNERS[c][u] == p
                               and CORNERS[c][v] == q) for p, q in ring])
    return faces


_FACES = _cube_faces()


def _polygons(inside):
    """Closed cycles of cut edges for a cube whose inside corners are ``inside`` (8 booleans)."""
    links = {}
    for face in _FACES:
        cut = [i for i in range(4) if inside[face[i]] != inside[face[(i + 1) % 4]]]
        if len(cut) == 2:
            segments = [tuple(_EDGE_OF[face[i], face[(i + 1) % 4]] for i in cut)]
        else:  # 0 or 4 cut edges; with 4, each inside corner is cut off on its own
            segments = [(_EDGE_OF[face[i - 1], face[i]], _EDGE_OF[face[i], face[(i + 1) % 4]])
                        for i in range(4) if len(cut) == 4 and inside[face[i]]]
        for a, b in segments:
            links.setdefault(a, []).append(b)
            links.setdefault(b, []).append(a)
    polygons, seen = [], set()
    for start in sorted(links):
        if start in seen:
            continue
        cycle, previous = [start], None
        seen.add(start)
        while True:
            current = cycle[-1]
            following = [e for e in links[current] if e != previous][0]
            if following == start:
                break
            cycle.append(following)
            seen.add(following)
            previous = current
        polygons.append(cycle)
    return polygons


def _rotations():
    """The 24 rotations of the cube as maps of edge indices."""
    index = {tuple(m): i for i, m in enumerate(MIDPOINTS)}
    maps = []
    for permutation in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            matrix = np.zeros((3, 3), int)
            matrix[range(3), permutation] = signs
            if round(np.linalg.det(matrix)) == 1:
                maps.append([index[tuple(matrix @ (m - .5) + .5)] for m in MIDPOINTS])
    return maps


@functools.lru_cache(maxsize=None)
def _is_planar(edges):
    """True when the midpoints of ``edges`` (a sorted tuple) lie in one plane."""
    points = MIDPOINTS[list(edges)]
    return np.linalg.matrix_rank(points - points[0], tol=1e-9) < 3


def _inside(config):
    return [bool((config >> c) & 1) for c in range(8)]


@functools.lru_cache(maxsize=1)
def cube_table():
    """(triangles, first): ``triangles[first[k]:first[k + 1]]`` are the triangles (3 edge indices each, oriented with
    the inside behind them) of cube configuration ``k``."""
    apexes, rotations = {}, _rotations()
    for config, (a, b) in _FAN_APEXES:
        (polygon,) = [p for p in _polygons(_inside(config)) if not _is_planar(tuple(sorted(p)))]
        for rotation in rotations:
            apexes[frozenset(rotation[e] for e in polygon)] = rotation[_EDGE_OF[a, b]]
    triangles, first = [], [0]
    for config in range(256):
        inside = _inside(config)
        meshed = [not v for v in inside] if inside[_PIVOT] else inside
        for polygon in _polygons(meshed):
            polygon = _facing_out(polygon, inside)
            apex = polygon[0] if _is_planar(tuple(sorted(polygon))) else apexes[frozenset(polygon)]
            k = polygon.index(apex)
            ring = polygon[k:] + polygon[:k]
            triangles += [(ring[0], b, c) for b, c in zip(ring[1:-1], ring[2:])]
        first.append(len(triangles))
    return np.array(triangles, dtype=np.intp).reshape(-1, 3), np.array(first, dtype=np.intp)


def _facing_out(polygon, inside):
    """The cycle ordered so that its normal (right-hand rule in z, y, x) points from the inside corners out."""
    points = [MIDPOINTS[e].tolist() for e in polygon]
    normal = [0.0, 0.0, 0.0]
    for (a0, a1, a2), (b0, b1, b2) in zip(points, points[1:] + points[:1]):
        normal[0] += a1 * b2 - a2 * b1
        normal[1] += a2 * b0 - a0 * b2
        normal[2] += a0 * b1 - a1 * b0
    facing = 0.0
    for a, b in (EDGES[e] for e in polygon):
        sign = 1 if inside[a] else -1
        facing += sign * sum(n * (int(q) - int(p)) for n, p, q in zip(normal, CORNERS[a], CORNERS[b]))
    return polygon if facing > 0 else polygon[::-1]


def configurations(mask):
    """The cube configuration (0-255) of every 2 x 2 x 2 block of voxels of a 3-D boolean mask."""
    z, y, x = (n - 1 for n in mask.shape)
    config = np.zeros((z, y, x), dtype=np.uint8)
    for c, (dz, dy, dx) in enumerate(CORNERS):
        config |= mask[dz:dz + z, dy:dy + y, dx:dx + x].astype(np.uint8) << np.uint8(c)
    return config


def surface_and_volume(mask, spacing):
    """Surface area and enclosed volume of the mesh of ``mask`` (z, y, x; padded so no voxel touches the border),
    with voxel ``spacing`` (z, y, x)."""
    triangles, first = cube_table()
    config = configurations(mask)
    cubes = np.flatnonzero((config != 0) & (config != 255))
    kinds = config.ravel()[cubes]
    counts = first[kinds + 1] - first[kinds]
    owner = np.repeat(np.arange(len(cubes)), counts)
    which = np.repeat(first[kinds], counts) + np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    origin = np.stack(np.unravel_index(cubes, config.shape), axis=1)[owner].astype(np.float64)  # (T, 3)
    spacing = np.asarray(spacing, dtype=np.float64)
    a, b, c = ((origin + MIDPOINTS[triangles[which, k]]) * spacing for k in range(3))
    # pyradiomics adds the triangles one by one, cube by cube in z, y, x order; the same running sums keep the
    # totals equal to rounding (a pairwise sum would differ from them by up to ~1e-12 on large lesions)
    ab = np.cross(a, b)
    volume = np.cumsum(ab[:, 0] * c[:, 0] + ab[:, 1] * c[:, 1] + ab[:, 2] * c[:, 2])[-1] / 6 if len(ab) else 0.0
    cross = np.cross(a - c, b - c)
    halves = 0.5 * np.sqrt(cross[:, 0] * cross[:, 0] + cross[:, 1] * cross[:, 1] + cross[:, 2] * cross[:, 2])
    area = np.cumsum(halves)[-1] if len(halves) else 0.0
    return float(area), float(volume)


def mesh_vertices(mask):
    """Mesh vertices as doubled voxel coordinates (z, y, x; exact integers): the midpoints of the grid edges whose
    two voxels differ."""
    parts = []
    for axis in range(3):
        lower = [slice(None)] * 3
        upper = [slice(None)] * 3
        lower[axis], upper[axis] = slice(None, -1), slice(1, None)
        where = np.nonzero(mask[tuple(lower)] != mask[tuple(upper)])
        doubled = np.stack(where, axis=1) * 2
        doubled[:, axis] += 1
        parts.append(doubled)
    return np.concatenate(parts)


def _plane_hulls(points, plane):
    """For each plane ``points[:, plane] == const`` (doubled integer coordinates), a mask of the points that may be
    vertices of that plane's convex hull: the first and last point of each row, then the rows' ends pruned, all
    planes at once, until both chains of ends only turn one way. Every hull vertex is kept."""
    u, v = [a for a in range(3) if a != plane]
    keep = np.zeros(len(points), bool)
    for side in (1, -1):  # the low ends of the rows (one chain), then the high ends (the other)
        order = np.lexsort((side * points[:, u], points[:, v], points[:, plane]))
        row = points[order][:, [plane, v]]
        first_in_row = np.r_[True, np.any(row[1:] != row[:-1], axis=1)]
        chain = order[first_in_row]  # one end per row, ordered by plane then row
        while len(chain) > 2:
            p = points[chain]
            same_before = np.r_[False, p[1:, plane] == p[:-1, plane]]
            same_after = np.r_[p[1:, plane] == p[:-1, plane], False]
            inner = same_before & same_after
            previous, following = np.roll(p, 1, axis=0), np.roll(p, -1, axis=0)
            # not a vertex when on or inside the segment between its neighbours (u interpolated along v)
            ahead = (following[:, v] - p[:, v]) * (side * previous[:, u]) + (p[:, v] - previous[:, v]) * (
                side * following[:, u])
            drop = inner & ((following[:, v] - previous[:, v]) * (side * p[:, u]) >= ahead)
            if not drop.any():
                break
            chain = chain[~drop]
        keep[chain] = True
    return keep


def _squared_distances(a, b):
    """Squared distances of point pairs, summed as pyradiomics sums them."""
    d = a - b
    d = d * d
    return d[:, 0] + d[:, 1] + d[:, 2]


def _largest_within_groups(points, groups, batch=2_000_000):
    """Largest squared distance between two points of the same group (0 when no group has two points), computed
    for batches of whole groups of about ``batch`` pairs."""
    order = np.argsort(groups, kind="stable")
    points, groups = points[order], groups[order]
    first = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    count = np.diff(np.r_[first, len(points)])
    pairs_before = np.cumsum(count * count) - count * count
    best, done = 0.0, 0
    while done < len(first):
        stop = max(done + 1, int(np.searchsorted(pairs_before, pairs_before[done] + batch, side="right")))
        i, j = _pairs(first[done:stop], count[done:stop], first[done:stop], count[done:stop])
        best = max(best, float(_squared_distances(points[i], points[j]).max()))
        done = stop
    return best


def _pairs(first_a, count_a, first_b, count_b):
    """Index pairs (i, j): every i of range(first_a, first_a + count_a) with every j of the matching b range."""
    sizes = count_a * count_b
    block = np.repeat(np.arange(len(sizes)), sizes)
    k = np.arange(len(block)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return first_a[block] + k // count_b[block], first_b[block] + k % count_b[block]


def _largest(points, at_least, cells=8):
    """Largest squared distance between two of ``points`` when it is at least ``at_least``: the points are sorted into
    a coarse grid of boxes and only pairs of boxes that can be that far apart are compared."""
    low, high = points.min(axis=0), points.max(axis=0)
    cell = np.minimum(((points - low) / np.maximum(high - low, 1e-12) * cells).astype(np.int64), cells - 1)
    key = (cell[:, 0] * cells + cell[:, 1]) * cells + cell[:, 2]
    order = np.argsort(key, kind="stable")
    points, key = points[order], key[order]
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    count = np.diff(np.r_[first, len(points)])
    box_low, box_high = np.minimum.reduceat(points, first), np.maximum.reduceat(points, first)
    a, b = np.triu_indices(len(first))
    reach = np.maximum(np.abs(box_high[a] - box_low[b]), np.abs(box_high[b] - box_low[a]))
    far = np.einsum("ij,ij->i", reach, reach) >= at_least * (1 - 1e-9)
    a, b = a[far], b[far]
    i, j = _pairs(first[a], count[a], first[b], count[b])
    return max(at_least, float(_squared_distances(points[i], points[j]).max())) if len(i) else at_least


def diameters(mask, spacing):
    """pyradiomics' maximum diameters of the mesh of ``mask``: (slice: within one z plane, column: one y plane, row:
    one x plane, 3-D), the largest distances between mesh vertices."""
    doubled = mesh_vertices(mask)
    if len(doubled) == 0:
        return 0.0, 0.0, 0.0, 0.0
    spacing = np.asarray(spacing, dtype=np.float64)
    result, in_all = [], np.ones(len(doubled), bool)
    for plane in range(3):  # slice (same z), column (same y), row (same x)
        hull = _plane_hulls(doubled, plane)
        in_all &= hull
        points = doubled[hull]
        result.append(_largest_within_groups(points * 0.5 * spacing, points[:, plane]))
    # a vertex of the 3-D hull is a vertex of the hull of each of its three planes; no diameter is shorter than
    # the planes' ones
    result.append(_largest(doubled[in_all] * 0.5 * spacing, max(result)))
    return tuple(float(np.sqrt(v)) for v in result)
