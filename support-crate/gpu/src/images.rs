//! Grey images for the image-processing lesson: a generated scene, PNG in and out, and
//! display in the notebook.
//!
//! ```
//! use parcours_gpu::images::Image;
//!
//! let scene = Image::scene(64, 48);
//! let png = scene.to_png();
//! let back = Image::from_png(&png).unwrap();
//! assert_eq!((back.width(), back.height()), (64, 48));
//! assert!(scene.max_difference(&back) < 1.0 / 255.0 + 1e-6);
//! ```

use base64::Engine;

use parcours::display::{Html, escape_html};

/// Why an image could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The bytes are not a whole, readable PNG.
    #[error("{0}")]
    Png(String),
    /// A file could not be read, or is not a readable PNG.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// A grey image: `width x height` brightness values, row by row, 0 black to 1 white.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    width: usize,
    height: usize,
    pixels: Vec<f32>,
}

impl Image {
    /// An image from its pixels, row by row.
    pub fn new(width: usize, height: usize, pixels: Vec<f32>) -> Image {
        assert_eq!(
            pixels.len(),
            width * height,
            "Image::new: {width} x {height} pixels expected"
        );
        Image {
            width,
            height,
            pixels,
        }
    }

    /// A generated landscape — sky, sun, mountains, a house, grain — with sharp and soft
    /// edges to blur and detect, at any size (the same picture at every size).
    pub fn scene(width: usize, height: usize) -> Image {
        let mut pixels = Vec::with_capacity(width * height);
        let mut noise = 0x2545_f491_u32;
        for y in 0..height {
            for x in 0..width {
                let (u, v) = (x as f32 / width as f32, y as f32 / height as f32);
                let mut value = 0.85 - 0.35 * v; // sky, darker towards the horizon
                if (u - 0.78).hypot((v - 0.22) * 0.75) < 0.09 {
                    value = 1.0; // sun
                }
                let ridge = 0.55 - 0.12 * (u * 9.0).sin().abs() - 0.08 * (u * 23.0 + 1.0).sin();
                if v > ridge {
                    value = 0.35 + 0.1 * (u * 40.0).sin() * (v * 30.0).cos(); // mountains
                }
                if v > 0.78 {
                    value = 0.25 + 0.15 * v; // field
                }
                if (0.18..0.42).contains(&u) && (0.62..0.86).contains(&v) {
                    value = 0.7; // house
                    let window = (0.23..0.29).contains(&u) || (0.32..0.38).contains(&u);
                    if window && (0.68..0.75).contains(&v) {
                        value = 0.1;
                    }
                }
                let roof = 0.62 - 0.12 * (1.0 - ((u - 0.30) / 0.15).abs());
                if (0.15..0.45).contains(&u) && v > roof && v <= 0.62 {
                    value = 0.15;
                }
                // Film grain from a xorshift generator: the same image every time.
                noise ^= noise << 13;
                noise ^= noise >> 17;
                noise ^= noise << 5;
                value += (noise as f32 / u32::MAX as f32 - 0.5) * 0.06;
                pixels.push(value.clamp(0.0, 1.0));
            }
        }
        Image {
            width,
            height,
            pixels,
        }
    }

    /// Reads a PNG (any colour type; colours become grey by luminance).
    ///
    /// # Errors
    /// [`ImageError::Png`] when the bytes are not a whole, readable PNG.
    pub fn from_png(bytes: &[u8]) -> Result<Image, ImageError> {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder
            .read_info()
            .map_err(|e| ImageError::Png(format!("not a readable PNG: {e}")))?;
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| ImageError::Png("the PNG is too large".into()))?;
        let mut buffer = vec![0; size];
        let frame = reader
            .next_frame(&mut buffer)
            .map_err(|e| ImageError::Png(format!("PNG data: {e}")))?;
        let channels = frame.color_type.samples();
        let pixels = buffer[..frame.buffer_size()]
            .chunks(channels)
            .map(|p| {
                let grey = match channels {
                    1 | 2 => f32::from(p[0]),
                    _ => {
                        0.2126 * f32::from(p[0])
                            + 0.7152 * f32::from(p[1])
                            + 0.0722 * f32::from(p[2])
                    }
                };
                grey / 255.0
            })
            .collect();
        Ok(Image::new(
            frame.width as usize,
            frame.height as usize,
            pixels,
        ))
    }

    /// Reads a PNG file.
    ///
    /// # Errors
    /// [`ImageError::File`] naming the file when it cannot be read or is not a readable PNG.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Image, ImageError> {
        let path = path.as_ref();
        let file = |reason: String| ImageError::File {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| file(e.to_string()))?;
        Image::from_png(&bytes).map_err(|e| file(e.to_string()))
    }

    /// The image as an 8-bit grey PNG (values outside 0..1 are clipped).
    pub fn to_png(&self) -> Vec<u8> {
        let mut png = Vec::new();
        let mut encoder = png::Encoder::new(&mut png, self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let bytes: Vec<u8> = self
            .pixels
            .iter()
            .map(|&p| (p.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect();
        let mut writer = encoder
            .write_header()
            .expect("writing a PNG header to memory");
        writer
            .write_image_data(&bytes)
            .expect("writing PNG data to memory");
        drop(writer);
        png
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The pixels, row by row.
    pub fn pixels(&self) -> &[f32] {
        &self.pixels
    }

    /// The pixel at `(x, y)`, coordinates outside the image clamped to its edge.
    pub fn clamped(&self, x: i64, y: i64) -> f32 {
        let x = x.clamp(0, self.width as i64 - 1) as usize;
        let y = y.clamp(0, self.height as i64 - 1) as usize;
        self.pixels[y * self.width + x]
    }

    /// The image scaled so that its brightest pixel is white (edge maps exceed 1).
    pub fn normalized(&self) -> Image {
        let max = self.pixels.iter().cloned().fold(0.0f32, f32::max);
        let scale = if max > 0.0 { 1.0 / max } else { 1.0 };
        Image::new(
            self.width,
            self.height,
            self.pixels.iter().map(|p| p * scale).collect(),
        )
    }

    /// The largest difference between two images' pixels (`f32::INFINITY` if their sizes differ).
    pub fn max_difference(&self, other: &Image) -> f32 {
        if (self.width, self.height) != (other.width, other.height) {
            return f32::INFINITY;
        }
        self.pixels
            .iter()
            .zip(&other.pixels)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    /// An `<img>` tag holding the image as PNG.
    pub fn to_html(&self) -> String {
        let data = base64::engine::general_purpose::STANDARD.encode(self.to_png());
        format!(
            "<img src=\"data:image/png;base64,{data}\" width=\"{}\" style=\"image-rendering: pixelated\"/>",
            self.width.min(480)
        )
    }

    /// Shown inline by the notebook kernel.
    pub fn evcxr_display(&self) {
        Html::new(self.to_html()).evcxr_display();
    }
}

/// Images side by side, each with a caption.
///
/// ```
/// use parcours_gpu::images::{Image, side_by_side};
/// let scene = Image::scene(32, 32);
/// let html = side_by_side(&[("before", &scene), ("after", &scene)]);
/// assert_eq!(html.as_str().matches("<img").count(), 2);
/// ```
pub fn side_by_side(images: &[(&str, &Image)]) -> Html {
    let figures: String = images
        .iter()
        .map(|(caption, image)| {
            format!(
                "<figure style=\"margin: 0 12px 0 0\">{}<figcaption>{}</figcaption></figure>",
                image.to_html(),
                escape_html(caption)
            )
        })
        .collect();
    Html::new(format!(
        "<div style=\"display: flex; flex-wrap: wrap\">{figures}</div>"
    ))
}

/// The weights of a Gaussian blur of radius `radius`: `(2r+1)²` values summing to 1, with
/// σ = r / 2 so the kernel's edge holds about 2 % of its centre.
///
/// ```
/// let weights = parcours_gpu::images::gaussian_weights(2);
/// assert_eq!(weights.len(), 25);
/// assert!((weights.iter().sum::<f32>() - 1.0).abs() < 1e-6);
/// ```
pub fn gaussian_weights(radius: u32) -> Vec<f32> {
    let r = radius as i32;
    let sigma = (radius as f32 / 2.0).max(0.5);
    let raw: Vec<f32> = (-r..=r)
        .flat_map(|dy| (-r..=r).map(move |dx| (dx, dy)))
        .map(|(dx, dy)| (-((dx * dx + dy * dy) as f32) / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = raw.iter().sum();
    raw.into_iter().map(|w| w / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_pngs_become_grey() {
        let mut png = Vec::new();
        let mut encoder = png::Encoder::new(&mut png, 2, 1);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder
            .write_header()
            .unwrap()
            .write_image_data(&[255, 255, 255, 0, 0, 0])
            .unwrap();
        let image = Image::from_png(&png).unwrap();
        assert!((image.pixels()[0] - 1.0).abs() < 1e-3 && image.pixels()[1] == 0.0);
    }

    #[test]
    fn a_truncated_png_is_an_error() {
        let png = Image::scene(16, 16).to_png();
        let error = Image::from_png(&png[..png.len() / 2]).unwrap_err();
        assert!(matches!(error, ImageError::Png(_)), "{error}");
        assert!(error.to_string().contains("PNG"), "{error}");
    }

    #[test]
    fn the_scene_has_contrast() {
        let scene = Image::scene(100, 80);
        let (min, max) = scene
            .pixels()
            .iter()
            .fold((1.0f32, 0.0f32), |(lo, hi), &p| (lo.min(p), hi.max(p)));
        assert!(min < 0.2 && max > 0.95, "{min} {max}");
    }
}
