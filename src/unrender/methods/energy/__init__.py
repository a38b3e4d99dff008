"""Learned-energy inverse graphics: a learned energy E(x, y) minimised by a few unrolled gradient
steps with learned step sizes (:mod:`.unrolled`), for 2D -> 3D human pose lifting (``energy-pose``)
and single-view voxel reconstruction (``energy-voxels``)."""
