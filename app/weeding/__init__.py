"""Weeding and disposal (thanh lọc → thanh lý) under TT 02/2020/TT-BVHTTDL."""
