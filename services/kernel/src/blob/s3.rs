//! S3 through `aws-sdk-s3`: a custom endpoint and path-style addressing for MinIO, static
//! credentials from configuration, rustls with ring.

use super::{Blob, BlobError, BlobStore, check_key};
use crate::Secret;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls;
use bytes::Bytes;
use futures::future::BoxFuture;

pub struct S3Options {
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub access_key_id: Secret<String>,
    pub secret_access_key: Secret<String>,
    pub path_style: bool,
}

pub struct S3Store {
    client: Client,
    bucket: String,
}

fn backend<E: std::error::Error>(e: E) -> BlobError {
    BlobError::Backend(DisplayErrorContext(e).to_string())
}

impl S3Store {
    pub fn new(o: S3Options) -> Self {
        let credentials = Credentials::new(
            o.access_key_id.expose(),
            o.secret_access_key.expose(),
            None,
            None,
            "protostar-config",
        );
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(o.region))
            .credentials_provider(credentials)
            .force_path_style(o.path_style)
            .http_client(http)
            // Checksums only where the API demands them: MinIO and older servers reject the
            // newer default trailers.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = o.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Self {
            client: Client::from_conf(builder.build()),
            bucket: o.bucket,
        }
    }

    pub async fn ensure_bucket(&self) -> Result<(), BlobError> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let already = e.as_service_error().is_some_and(|s| {
                    s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()
                });
                if already { Ok(()) } else { Err(backend(e)) }
            }
        }
    }
}

impl BlobStore for S3Store {
    fn put<'a>(
        &'a self,
        key: &'a str,
        bytes: Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            check_key(key)?;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(content_type)
                .body(ByteStream::from(bytes))
                .send()
                .await
                .map_err(backend)?;
            Ok(())
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Blob, BlobError>> {
        Box::pin(async move {
            check_key(key)?;
            let out = match self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
            {
                Ok(o) => o,
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                    return Err(BlobError::NotFound(key.to_owned()));
                }
                Err(e) => return Err(backend(e)),
            };
            let content_type = out
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_owned();
            let bytes = out.body.collect().await.map_err(backend)?.into_bytes();
            Ok(Blob {
                bytes,
                content_type,
            })
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            check_key(key)?;
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map_err(backend)?;
            Ok(())
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, BlobError>> {
        Box::pin(async move {
            let mut keys = Vec::new();
            let mut pages = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(backend)?;
                keys.extend(
                    page.contents()
                        .iter()
                        .filter_map(|o| o.key().map(str::to_owned)),
                );
            }
            Ok(keys)
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.client
                .head_bucket()
                .bucket(&self.bucket)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("bucket {}: {}", self.bucket, DisplayErrorContext(e)))
        })
    }
}
