"""Small DICOM files written with pydicom, for reader and dataset tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid


def write_dicom(path: Path, pixels: np.ndarray | None, *, photometric: str = "MONOCHROME2",
                transfer_syntax: UID = ExplicitVRLittleEndian, **attributes: object) -> Path:
    """Write ``pixels`` (uint16, H×W or F×H×W; None for no pixel data) as a DICOM file."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    if pixels is not None:
        ds.Rows, ds.Columns = pixels.shape[-2:]
        if pixels.ndim == 3:
            ds.NumberOfFrames = pixels.shape[0]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        if transfer_syntax.is_compressed:
            ds.PixelData = encapsulate([b"\xff\xd8\xff\xf7 not really compressed data \xff\xd9"])
            ds["PixelData"].VR = "OB"
        else:
            ds.PixelData = pixels.astype("<u2").tobytes()
    for key, value in attributes.items():
        setattr(ds, key, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
