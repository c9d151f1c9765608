/** The opt-in GPU route: installing the CUDA runtime beside the default install, and checking a machine. */
export { installGpuRuntime, embeddedOrtVersions, GPU_TARBALLS } from './install';
export type { GpuInstallOptions, GpuInstallResult } from './install';
export { gpuDoctor, formatDoctorReport } from './doctor';
export type { DoctorCheck, GpuDoctorOptions, GpuDoctorReport } from './doctor';
export { locateLibraries } from './shared-libraries';
export type { LibraryLocation, LibrarySearch } from './shared-libraries';
